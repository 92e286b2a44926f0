using System.Net;
using System.Net.Http.Headers;

namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>The servers the other tests rely on behave as those tests assume.</summary>
public sealed class InfrastructureTests
{
    private static HttpClient NewClient(bool trustAny = false)
    {
        var handler = new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false };
        if (trustAny)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        }

        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
    }

    [Fact]
    public async Task Nginx_serves_ranges_over_http_and_https_and_logs_them()
    {
        await using var nginx = await NginxServer.StartAsync();
        var data = ImageFactory.Random(100_000, seed: 1);
        string path = nginx.Put("infra/a.img", data);
        using var client = NewClient(trustAny: true);

        foreach (var url in new[] { nginx.HttpUrl(path), nginx.HttpsUrl(path) })
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, url);
            req.Headers.Range = new RangeHeaderValue(1000, 1999);
            using var res = await client.SendAsync(req);
            Assert.Equal(HttpStatusCode.PartialContent, res.StatusCode);
            Assert.Equal(data.AsSpan(1000, 1000).ToArray(), await res.Content.ReadAsByteArrayAsync());
        }

        var log = await nginx.SettledRequestsAsync("/infra/a.img");
        Assert.Equal(2, log.Count);
        Assert.All(log, e => Assert.Equal((1000L, 1999L), e.ParsedRange));
        Assert.Equal(new[] { nginx.HttpPort, nginx.HttpsPort }.Order(), log.Select(e => e.Port).Order());
    }

    [Fact]
    public async Task Nginx_auth_area_needs_the_password_and_redirect_area_redirects()
    {
        await using var nginx = await NginxServer.StartAsync();
        string path = nginx.Put("auth/b.img", ImageFactory.Random(4096, seed: 2));
        using var client = NewClient();

        using (var res = await client.GetAsync(nginx.HttpUrl(path)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, res.StatusCode);
        }

        using (var req = new HttpRequestMessage(HttpMethod.Get, nginx.HttpUrl(path)))
        {
            req.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{NginxServer.AuthUser}:{NginxServer.AuthPassword}")));
            using var res = await client.SendAsync(req);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        }

        using (var res = await client.GetAsync(nginx.HttpUrl("/redirect/auth/b.img")))
        {
            Assert.Equal(HttpStatusCode.Found, res.StatusCode);
            Assert.EndsWith("/auth/b.img", res.Headers.Location!.ToString(), StringComparison.Ordinal);
        }

        var log = await nginx.SettledRequestsAsync("b.img");
        Assert.Equal([401, 200, 302], log.Select(e => e.Status).ToArray());
        Assert.Equal(NginxServer.AuthUser, log[1].User);
    }

    [Fact]
    public async Task Fault_server_range_file_honours_range_if_range_and_if_match()
    {
        await using var server = await FaultHttpServer.StartAsync();
        var file = new RangeFile(ImageFactory.Random(10_000, seed: 3), "\"a\"");
        server.Map("/f.img", file);
        using var client = NewClient();

        using (var req = new HttpRequestMessage(HttpMethod.Get, server.Url("/f.img")))
        {
            req.Headers.Range = new RangeHeaderValue(9000, 20000);
            using var res = await client.SendAsync(req);
            Assert.Equal(HttpStatusCode.PartialContent, res.StatusCode);
            Assert.Equal("bytes 9000-9999/10000", res.Content.Headers.ContentRange!.ToString());
            Assert.Equal(file.Data.AsSpan(9000).ToArray(), await res.Content.ReadAsByteArrayAsync());
        }

        file.Replace(ImageFactory.Random(10_000, seed: 4), "\"b\"", DateTimeOffset.UnixEpoch);
        using (var req = new HttpRequestMessage(HttpMethod.Get, server.Url("/f.img")))
        {
            req.Headers.Range = new RangeHeaderValue(0, 9);
            req.Headers.IfRange = new RangeConditionHeaderValue(new EntityTagHeaderValue("\"a\""));
            using var res = await client.SendAsync(req);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        }

        using (var req = new HttpRequestMessage(HttpMethod.Get, server.Url("/f.img")))
        {
            req.Headers.Range = new RangeHeaderValue(0, 9);
            req.Headers.IfMatch.Add(new EntityTagHeaderValue("\"a\""));
            using var res = await client.SendAsync(req);
            Assert.Equal(HttpStatusCode.PreconditionFailed, res.StatusCode);
        }

        var seen = server.Requests("/f.img");
        Assert.Equal([206, 200, 412], seen.Select(r => r.Status).ToArray());
        Assert.Equal("bytes=0-9", seen[2].Range);
    }

    [Fact]
    public async Task Process_runner_reports_a_missing_tool_as_a_failure_naming_the_package()
    {
        var e = Assert.Throws<InvalidOperationException>(() => ProcessRunner.RequireTool("no-such-tool-urldisk", "some-package"));
        Assert.Contains("some-package", e.Message, StringComparison.Ordinal);
        var r = await ProcessRunner.RunAsync("sh", ["-c", "echo out; echo err >&2; exit 3"], TimeSpan.FromSeconds(10));
        Assert.Equal((3, "out\n", "err\n"), (r.ExitCode, r.Stdout, r.Stderr));
        await Assert.ThrowsAsync<TimeoutException>(() => ProcessRunner.RunAsync("sleep", ["30"], TimeSpan.FromMilliseconds(300)));
    }
}
