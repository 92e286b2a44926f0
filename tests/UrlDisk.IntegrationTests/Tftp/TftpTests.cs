using System.Security.Cryptography;
using UrlDisk.IntegrationTests.Ftp;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Tftp;

public sealed class TftpTests(TftpdHpa server) : IClassFixture<TftpdHpa>
{
    private static ValueTask<IBlockDevice> Open(string url, params (string Key, string Value)[] options)
        => VsftpdTests.Open("tftp", url, options);

    private static IReadOnlyDictionary<string, object?> SourceDetails(IBlockDevice dev) => dev.Info.Child!.Info.Details;

    [Fact]
    public async Task Raw_image_over_tftpd_hpa_random_reads_match_while_the_fill_runs()
    {
        await using var dev = await ImageOpener.OpenAsync($"tftp://127.0.0.1:{server.Port}/disk.img");
        Assert.Equal("tftp", dev.Info.Child!.Info.Driver);
        var details = SourceDetails(dev);
        Assert.Equal(1428, details["blksize"]);
        Assert.Equal((long)server.Image.Length, details["tsize"]);
        Assert.True(details.ContainsKey("fill-cache"));
        await RandomReads.AssertMatchesAsync(dev, server.Image, reads: 60, seed: 5);
    }

    [Theory]
    [InlineData(512)]
    [InlineData(8192)]
    [InlineData(65464)]
    public async Task Block_size_is_negotiated(int blksize)
    {
        await using var dev = await Open($"tftp://127.0.0.1:{server.Port}/disk.img", ("blksize", blksize.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(blksize, SourceDetails(dev)["blksize"]);
        await RandomReads.AssertWholeAsync(dev, server.Image);
    }

    [Fact]
    public async Task File_of_whole_blocks_ends_with_an_empty_block()
    {
        await using var dev = await Open($"tftp://127.0.0.1:{server.NoTsizePort}/whole.img", ("blksize", "512"));
        await RandomReads.AssertWholeAsync(dev, server.WholeBlocks);
    }

    [Fact]
    public async Task Server_refusing_tsize_gives_the_size_at_the_end_of_the_transfer()
    {
        await using var dev = await Open($"tftp://127.0.0.1:{server.NoTsizePort}/disk.img");
        Assert.Equal("not offered", SourceDetails(dev)["tsize"]);
        Assert.Equal(server.Image.Length, dev.Length);
        await RandomReads.AssertMatchesAsync(dev, server.Image, reads: 30, seed: 6);
    }

    [Fact]
    public async Task Block_numbers_roll_over_past_65535()
    {
        // 512-byte blocks: 33 MiB needs block numbers up to 67584, so they wrap to 0 once.
        var image = new byte[33 * 1024 * 1024 + 100];
        new Random(8).NextBytes(image);
        string name = "big-" + Guid.NewGuid().ToString("n") + ".img";
        await File.WriteAllBytesAsync(Path.Combine(server.Root, name), image);
        try
        {
            await using var dev = await Open($"tftp://127.0.0.1:{server.Port}/{name}", ("blksize", "512"));
            var tail = new byte[4096];
            await dev.ReadAsync(image.Length - tail.Length, tail);
            Assert.True(tail.AsSpan().SequenceEqual(image.AsSpan(image.Length - tail.Length)));
            await RandomReads.AssertMatchesAsync(dev, image, reads: 30, seed: 9);
        }
        finally
        {
            File.Delete(Path.Combine(server.Root, name));
        }
    }

    [Fact]
    public async Task Fill_cache_file_lives_in_the_cache_directory_and_is_removed_at_close()
    {
        string dir = Directory.CreateTempSubdirectory("urldisk-fillcache-").FullName;
        try
        {
            var context = new OpenContext { CacheDirectory = dir };
            var dev = await ImageOpener.OpenAsync($"tftp://127.0.0.1:{server.Port}/disk.img", "raw", context);
            var fill = (IReadOnlyDictionary<string, object?>)SourceDetails(dev)["fill-cache"]!;
            Assert.Equal(dir, Path.GetDirectoryName((string)fill["file"]!));
            await RandomReads.AssertWholeAsync(dev, server.Image);
            Assert.Single(Directory.GetFiles(dir));
            await dev.DisposeAsync();
            Assert.Empty(Directory.GetFiles(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Missing_file_names_the_servers_error()
    {
        var e = await Assert.ThrowsAsync<SourceException>(async () => await ImageOpener.OpenAsync($"tftp://127.0.0.1:{server.Port}/missing.img"));
        Assert.Contains("error 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lost_datagrams_through_a_lossy_relay_are_recovered()
    {
        await using var proxy = new LossyUdpProxy(server.Port, dropRate: 0.05, seed: 7);
        var image = server.Image.AsSpan(0, 512 * 1024).ToArray();
        string name = "small-" + Guid.NewGuid().ToString("n") + ".img";
        await File.WriteAllBytesAsync(Path.Combine(server.Root, name), image);
        try
        {
            await using var dev = await Open($"tftp://127.0.0.1:{proxy.Port}/{name}", ("timeout", "0.2"), ("retries", "10"));
            await RandomReads.AssertWholeAsync(dev, image);
            Assert.True(proxy.Dropped > 0, "the relay dropped nothing");
        }
        finally
        {
            File.Delete(Path.Combine(server.Root, name));
        }
    }

    [Fact]
    public async Task Window_size_is_negotiated_and_blocks_lost_inside_a_window_are_sent_again()
    {
        var file = RandomNumberGenerator.GetBytes(200_000);
        await using var fake = new FakeTftpServer(file, loseBlocksOnce: [3, 10, 11, 30, 49]);
        await using var dev = await Open($"tftp://127.0.0.1:{fake.Port}/x.img", ("blksize", "1024"), ("windowsize", "16"), ("timeout", "0.2"));
        Assert.Equal(4, SourceDetails(dev)["windowsize"]);
        Assert.Equal(1024, SourceDetails(dev)["blksize"]);
        await RandomReads.AssertWholeAsync(dev, file);
        Assert.True(fake.WindowsResent >= 4, $"only {fake.WindowsResent} windows were sent again");
        Assert.Equal("16", fake.Requests[0]["windowsize"]);
    }

    [Fact]
    public async Task Server_refusing_options_is_asked_again_without_them()
    {
        var file = RandomNumberGenerator.GetBytes(5000);
        await using var fake = new FakeTftpServer(file, refuseOptions: true);
        await using var dev = await Open($"tftp://127.0.0.1:{fake.Port}/x.img", ("timeout", "0.2"));
        Assert.Equal(512, SourceDetails(dev)["blksize"]);
        Assert.Equal(2, fake.Requests.Count);
        Assert.Empty(fake.Requests[1]);
        await RandomReads.AssertWholeAsync(dev, file);
    }
}
