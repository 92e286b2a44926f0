using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>Certificate checks against nginx's self-signed certificate: refused by default, accepted with sslverify=off or cafile.</summary>
public sealed class HttpTlsTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    private NginxServer Nginx => fixture.Server;

    private (byte[] Data, string Path) Put(string name)
    {
        var data = ImageFactory.Random(1 << 20, seed: 60 + name.Length);
        return (data, Nginx.Put($"tls/{name}.img", data));
    }

    [Fact]
    public async Task Self_signed_certificate_is_refused_with_a_certificate_error()
    {
        var (_, path) = Put("verify-on");
        var r = await UrlDiskCli.RunAsync("info", Nginx.HttpsUrl(path));
        CliAssert.Fails(r, "certificate");
    }

    [Fact]
    public async Task Sslverify_on_explicitly_is_refused_too()
    {
        var (_, path) = Put("verify-on-explicit");
        var r = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("https", Nginx.HttpsUrl(path), ("sslverify", "on")));
        CliAssert.Fails(r, "certificate");
    }

    [Theory]
    [InlineData("off")]
    [InlineData(false)]
    public async Task Sslverify_off_reads_the_image(object off)
    {
        var (data, path) = Put($"verify-off-{off}");
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using var device = await DeviceReads.OpenAsync(HttpSpecs.JsonDotted("https", Nginx.HttpsUrl(path), ("sslverify", off)), cts.Token);
        ImageFactory.AssertSameBytes(data, await DeviceReads.ReadAllAsync(device, cts.Token), "https with sslverify=off");
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("localhost")]
    public async Task Cafile_with_the_servers_certificate_verifies(string host)
    {
        var (data, path) = Put($"cafile-{host}");
        string url = Nginx.HttpsUrl(path).Replace("127.0.0.1", host, StringComparison.Ordinal);
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using var device = await DeviceReads.OpenAsync(HttpSpecs.JsonDotted("https", url, ("sslverify", "on"), ("cafile", Nginx.Certificate.CertificatePath)), cts.Token);
        ImageFactory.AssertSameBytes(data, await DeviceReads.ReadAllAsync(device, cts.Token), $"https via {host} with cafile");
    }

    [Fact]
    public async Task Cafile_that_does_not_exist_names_the_option()
    {
        var (_, path) = Put("cafile-missing");
        var r = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("https", Nginx.HttpsUrl(path), ("cafile", "/nonexistent/urldisk-ca.pem")));
        CliAssert.Fails(r, "cafile");
    }

    [Fact]
    public async Task Cafile_of_another_ca_is_refused()
    {
        var (_, path) = Put("cafile-other");
        using var tmp = new TempDir();
        var other = await TestCertificate.CreateAsync(tmp.Path);
        var r = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("https", Nginx.HttpsUrl(path), ("cafile", other.CertificatePath)));
        CliAssert.Fails(r, "certificate");
    }
}
