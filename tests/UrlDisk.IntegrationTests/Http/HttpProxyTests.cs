using System.Text;
using Microsoft.AspNetCore.Http;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>
/// The <c>proxy</c>, <c>proxy-username</c> and <c>proxy-password-file</c> options: every request goes through the proxy
/// (the image's host does not even resolve), and the proxy's 407 challenge is answered with the credentials.
/// </summary>
public sealed class HttpProxyTests : IAsyncLifetime
{
    private const string ProxyUser = "proxyuser";
    private const string ProxyPassword = "pr0xy-s3cret";
    private FaultHttpServer _proxy = null!;
    private readonly TempDir _dir = new("urldisk-proxy");
    private readonly List<string> _hosts = [];
    private readonly byte[] _data = ImageFactory.Random((2 << 20) + 777, seed: 404);

    public async Task InitializeAsync()
    {
        _proxy = await FaultHttpServer.StartAsync();
        var file = new RangeFile(_data);
        _proxy.Map("/disk.img", async (ctx, _) =>
        {
            lock (_hosts)
            {
                _hosts.Add(ctx.Request.Host.Host);
            }

            string expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{ProxyUser}:{ProxyPassword}"));
            if (ctx.Request.Headers["Proxy-Authorization"].ToString() != expected)
            {
                ctx.Response.StatusCode = StatusCodes.Status407ProxyAuthenticationRequired;
                ctx.Response.Headers["Proxy-Authenticate"] = "Basic realm=\"test proxy\"";
                return;
            }

            await file.ServeAsync(ctx);
        });
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        _dir.Dispose();
    }

    private string PasswordFile(string password)
    {
        string path = _dir.File("proxy-pw-" + Guid.NewGuid().ToString("n"));
        File.WriteAllText(path, password + "\n");
        return path;
    }

    [Fact]
    public async Task Reads_go_through_the_proxy_with_its_credentials()
    {
        string spec = HttpSpecs.JsonDotted("http", "http://disk-image.invalid/disk.img",
            ("proxy", $"http://127.0.0.1:{_proxy.Port}"), ("proxy-username", ProxyUser), ("proxy-password-file", PasswordFile(ProxyPassword)));
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using var device = await DeviceReads.OpenRawAsync(spec, cts.Token);
        Assert.Equal(_data.Length, device.Length);
        await DeviceReads.AssertRandomReadsAsync(device, _data, count: 40, seed: 5, cts.Token);
        lock (_hosts)
        {
            Assert.NotEmpty(_hosts);
            Assert.All(_hosts, h => Assert.Equal("disk-image.invalid", h));
        }
    }

    [Fact]
    public async Task A_wrong_proxy_password_names_407_and_never_the_password()
    {
        const string wrong = "not-the-pr0xy-password";
        string spec = HttpSpecs.JsonDotted("http", "http://disk-image.invalid/disk.img",
            ("proxy", $"http://127.0.0.1:{_proxy.Port}"), ("proxy-username", ProxyUser), ("proxy-password-file", PasswordFile(wrong)));
        var result = await UrlDiskCli.RunAsync("info", spec);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("407", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, result.Stderr + result.Stdout, StringComparison.Ordinal);
    }
}
