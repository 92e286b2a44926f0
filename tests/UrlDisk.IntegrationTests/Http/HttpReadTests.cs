using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>Bytes read through the http and https sources from a real nginx equal the file's bytes.</summary>
public sealed class HttpReadTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    // Not a multiple of 512 or of the readahead, so the last piece is short.
    private const int ImageSize = (6 << 20) + 1234;

    private NginxServer Nginx => fixture.Server;

    private (byte[] Data, string Path) PutImage(string name, int seed, int size = ImageSize)
    {
        var data = ImageFactory.WithZeroRegions(size, seed, regionSize: 256 * 1024);
        return (data, Nginx.Put($"read/{name}.img", data));
    }

    public static TheoryData<string> Forms => new() { "url", "json-dotted", "json-nested", "https-sslverify-off", "https-cafile" };

    private string Spec(string form, string path) => form switch
    {
        "url" => Nginx.HttpUrl(path),
        "json-dotted" => HttpSpecs.JsonDotted("http", Nginx.HttpUrl(path), ("readahead", "64k")),
        "json-nested" => HttpSpecs.JsonNested("http", Nginx.HttpUrl(path), ("readahead", "1M"), ("connections", 3)),
        "https-sslverify-off" => HttpSpecs.JsonDotted("https", Nginx.HttpsUrl(path), ("sslverify", "off")),
        "https-cafile" => HttpSpecs.JsonDotted("https", Nginx.HttpsUrl(path), ("cafile", Nginx.Certificate.CertificatePath)),
        _ => throw new ArgumentOutOfRangeException(nameof(form)),
    };

    [Theory]
    [MemberData(nameof(Forms))]
    public async Task Random_reads_through_the_library_match_the_file(string form)
    {
        var (data, path) = PutImage($"random-{form}", seed: 11);
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using var device = await DeviceReads.OpenAsync(Spec(form, path), cts.Token);
        Assert.Equal(data.Length, device.Length);
        await DeviceReads.AssertRandomReadsAsync(device, data, count: 60, seed: 100, cts.Token);
    }

    [Theory]
    [InlineData("http")]
    [InlineData("https")]
    public async Task Concurrent_reads_through_the_library_match_the_file(string scheme)
    {
        var (data, path) = PutImage($"concurrent-{scheme}", seed: 12);
        string spec = scheme == "http" ? Nginx.HttpUrl(path) : HttpSpecs.JsonDotted("https", Nginx.HttpsUrl(path), ("sslverify", "off"));
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using var device = await DeviceReads.OpenAsync(spec, cts.Token);
        await DeviceReads.AssertConcurrentReadsAsync(device, data, readers: 16, readsEach: 15, seed: 200, cts.Token);
        ImageFactory.AssertSameBytes(data, await DeviceReads.ReadAllAsync(device, cts.Token), "whole image after concurrent reads");
    }

    [Fact]
    public async Task Connections_option_bounds_the_number_of_tcp_connections()
    {
        var (data, path) = PutImage("connections", seed: 13);
        string spec = HttpSpecs.JsonDotted("http", Nginx.HttpUrl(path), ("connections", 2), ("readahead", "64k"));
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using (var device = await DeviceReads.OpenAsync(spec, cts.Token))
        {
            await DeviceReads.AssertConcurrentReadsAsync(device, data, readers: 12, readsEach: 10, seed: 300, cts.Token);
        }

        var log = await Nginx.SettledRequestsAsync(path);
        int connections = log.Select(e => e.Connection).Distinct().Count();
        Assert.True(connections <= 2, $"connections=2 but nginx saw {connections} TCP connections for {log.Count} requests");
    }

    [Fact]
    public async Task Range_requests_ask_for_whole_readahead_pieces_not_single_sectors()
    {
        var (data, path) = PutImage("readahead", seed: 14, size: 4 << 20);
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using (var device = await DeviceReads.OpenAsync(HttpSpecs.JsonDotted("http", Nginx.HttpUrl(path), ("readahead", "256k")), cts.Token))
        {
            // 512-byte reads walking the first MiB: readahead must turn them into a few large requests.
            var sector = new byte[512];
            for (int off = 0; off < 1 << 20; off += 512)
            {
                await device.ReadAsync(off, sector, cts.Token);
                ImageFactory.AssertSameBytes(data.AsSpan(off, 512), sector, $"sector at {off}");
            }
        }

        var gets = (await Nginx.SettledRequestsAsync(path)).Where(e => e.Method == "GET").ToList();
        Assert.InRange(gets.Count, 1, 16);
        Assert.All(gets, e => Assert.NotNull(e.Range));
    }

    [Theory]
    [InlineData("url")]
    [InlineData("json-dotted")]
    [InlineData("json-nested")]
    [InlineData("image-opts")]
    [InlineData("https-sslverify-off")]
    public async Task Cli_convert_writes_the_whole_image(string form)
    {
        var (data, path) = PutImage($"convert-{form}", seed: 15);
        using var tmp = new TempDir();
        string output = tmp.File("out.raw");
        string[] args = form == "image-opts"
            ? ["convert", "--image-opts", "-O", "raw", HttpSpecs.ImageOpts("http", Nginx.HttpUrl(path), ("readahead", "128k")), output]
            : ["convert", "-O", "raw", Spec(form, path), output];
        var r = await UrlDiskCli.RunAsync(args);
        Assert.True(r.ExitCode == 0, r.ToString());
        ImageFactory.AssertSameBytes(data, await File.ReadAllBytesAsync(output), $"convert ({form})");
    }

    [Fact]
    public async Task Cli_convert_dash_n_writes_into_the_existing_target()
    {
        // -n: the target exists already and must not be created; the data still lands in it.
        var (data, path) = PutImage("convert-n", seed: 16, size: 1 << 20);
        using var tmp = new TempDir();
        string output = tmp.File("existing.raw");
        await File.WriteAllBytesAsync(output, new byte[data.Length]);
        var r = await UrlDiskCli.RunAsync("convert", "-n", "-O", "raw", Nginx.HttpUrl(path), output);
        Assert.True(r.ExitCode == 0, r.ToString());
        ImageFactory.AssertSameBytes(data, await File.ReadAllBytesAsync(output), "convert -n into an existing file");
    }

    [Fact]
    public async Task Redirect_is_followed_once_then_ranges_go_to_the_target()
    {
        var (data, path) = PutImage("redirected", seed: 17, size: 2 << 20);
        using var tmp = new TempDir();
        string output = tmp.File("out.raw");
        var r = await UrlDiskCli.RunAsync("convert", "-O", "raw", HttpSpecs.JsonDotted("http", Nginx.HttpUrl("/redirect" + path), ("readahead", "64k")), output);
        Assert.True(r.ExitCode == 0, r.ToString());
        ImageFactory.AssertSameBytes(data, await File.ReadAllBytesAsync(output), "convert through a redirect");

        var log = await Nginx.SettledRequestsAsync(path);
        Assert.Single(log, e => e.Uri.StartsWith("/redirect/", StringComparison.Ordinal));
        Assert.True(log.Count(e => e.Uri == path && e.Method == "GET") >= 2, "the range requests should go to the redirect's target");
    }
}
