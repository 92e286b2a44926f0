using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>https against an nginx that offers HTTP/2 (ALPN h2): many range requests share one multiplexed connection.</summary>
public sealed class Http2Tests : IAsyncLifetime
{
    private NginxServer _nginx = null!;

    public async Task InitializeAsync() => _nginx = await NginxServer.StartAsync(new NginxOptions { Http2 = true });

    public async Task DisposeAsync() => await _nginx.DisposeAsync();

    [Fact]
    public async Task Concurrent_reads_over_http2_match_the_file()
    {
        var data = ImageFactory.WithZeroRegions((5 << 20) + 777, seed: 120, regionSize: 256 * 1024);
        string path = _nginx.Put("h2/disk.img", data);
        string spec = HttpSpecs.JsonDotted("https", _nginx.HttpsUrl(path), ("cafile", _nginx.Certificate.CertificatePath), ("readahead", "64k"));
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using (var device = await DeviceReads.OpenAsync(spec, cts.Token))
        {
            await DeviceReads.AssertConcurrentReadsAsync(device, data, readers: 16, readsEach: 10, seed: 121, cts.Token);
        }

        var info = await UrlDiskCli.RunAsync("info", "--output", "json", spec);
        Assert.True(info.ExitCode == 0, info.ToString());
        Assert.Equal("2.0", JsonNode.Parse(info.Stdout)!["urldisk"]!["source"]!["http-version"]!.GetValue<string>());
    }

    [Fact]
    public async Task Convert_over_http2_writes_the_whole_image()
    {
        var data = ImageFactory.WithZeroRegions(6 << 20, seed: 122, regionSize: 512 * 1024);
        string path = _nginx.Put("h2/convert.img", data);
        using var tmp = new TempDir();
        string uOut = tmp.File("urldisk.raw");
        var u = await UrlDiskCli.RunAsync("convert", "-O", "raw", HttpSpecs.JsonDotted("https", _nginx.HttpsUrl(path), ("sslverify", "off")), uOut);
        Assert.True(u.ExitCode == 0, u.ToString());
        ImageFactory.AssertSameBytes(data, await File.ReadAllBytesAsync(uOut), "convert over HTTP/2");
    }
}
