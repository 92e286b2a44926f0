using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.Layers.DiskCache;

namespace UrlDisk.IntegrationTests.DiskCache;

/// <summary>
/// The disk cache through real <c>urldisk</c> processes against a real nginx: a second convert makes no range
/// request, concurrent processes and a kill -9 leave a cache that gives exact bytes, a changed file is fetched anew,
/// cache-max evicts, damage is discarded, and a file without validators is not kept.
/// </summary>
public sealed class DiskCacheCliTests : IAsyncLifetime
{
    // nginx sends each connection at most this fast under /slow/, so a convert takes long enough to overlap or to kill.
    private const string SlowLocation = "location /slow/ { limit_rate 2m; }";

    private readonly TempDir _temp = new("urldisk-diskcache");
    private NginxServer _nginx = null!;

    private string CacheDir => Path.Combine(_temp.Path, "cache");

    public async Task InitializeAsync() => _nginx = await NginxServer.StartAsync(new NginxOptions { ExtraServerConfig = SlowLocation });

    public async Task DisposeAsync()
    {
        await _nginx.DisposeAsync();
        _temp.Dispose();
    }

    private static string[] ConvertArgs(string source, string output, params string[] extra)
        => ["-v", "convert", "-O", "raw", .. extra, source, output];

    private Task<ProcessResult> ConvertAsync(string url, string output, params string[] extra)
        => UrlDiskCli.RunAsync(ConvertArgs(url, output, ["--cache-dir", CacheDir, .. extra]));

    private async Task<int> RangeRequestsAsync(string path) => (await _nginx.SettledRequestsAsync(path)).Count(r => r.Range is not null);

    private static void AssertExact(ProcessResult r, byte[] expected, string output)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(expected.AsSpan().SequenceEqual(File.ReadAllBytes(output)), $"{output} differs from the served file\n{r}");
    }

    private string[] IndexFiles() => Directory.Exists(CacheDir) ? Directory.GetFiles(CacheDir, "*.index") : [];

    [Fact]
    public async Task A_second_convert_of_the_same_url_makes_no_range_request_and_writes_the_same_bytes()
    {
        var data = ImageFactory.Random((5 << 20) + 777, seed: 1);
        string path = _nginx.Put("twice.img", data);

        var first = await ConvertAsync(_nginx.HttpUrl(path), _temp.File("1.raw"));
        AssertExact(first, data, _temp.File("1.raw"));
        int afterFirst = await RangeRequestsAsync(path);
        Assert.True(afterFirst > 0);

        // URLDISK_CACHE_DIR names the same directory as --cache-dir did.
        var second = await UrlDiskCli.RunAsync(ConvertArgs(_nginx.HttpUrl(path), _temp.File("2.raw")), environment: new Dictionary<string, string?> { ["URLDISK_CACHE_DIR"] = CacheDir });
        AssertExact(second, data, _temp.File("2.raw"));
        Assert.Equal(afterFirst, await RangeRequestsAsync(path));
        Assert.Contains($"{data.Length} of {data.Length} bytes present", second.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_concurrent_converts_both_get_exact_bytes_and_leave_one_consistent_entry()
    {
        var data = ImageFactory.Random(12 << 20, seed: 2);
        string path = _nginx.Put("slow/shared.img", data);

        var runs = await Task.WhenAll(
            ConvertAsync(_nginx.HttpUrl(path), _temp.File("a.raw")),
            ConvertAsync(_nginx.HttpUrl(path), _temp.File("b.raw")));
        AssertExact(runs[0], data, _temp.File("a.raw"));
        AssertExact(runs[1], data, _temp.File("b.raw"));

        var entry = Assert.Single(DiskCacheStore.List(CacheDir));
        Assert.Equal(data.Length, entry.PresentBytes);
        int before = await RangeRequestsAsync(path);
        var third = await ConvertAsync(_nginx.HttpUrl(path), _temp.File("c.raw"));
        AssertExact(third, data, _temp.File("c.raw"));
        Assert.Equal(before, await RangeRequestsAsync(path));
    }

    [Fact]
    public async Task A_convert_killed_mid_way_leaves_a_cache_that_a_rerun_uses_for_exact_bytes()
    {
        var data = ImageFactory.Random(24 << 20, seed: 3);
        string path = _nginx.Put("slow/killed.img", data);
        string launcher = await UrlDiskCli.LauncherAsync();

        await using (var running = ProcessRunner.Start(launcher, ConvertArgs(_nginx.HttpUrl(path), _temp.File("killed.raw"), "--cache-dir", CacheDir), TestEnvironment.NoProxy))
        {
            // Kill -9 once the first blocks are claimed, while later ones are still arriving.
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (ClaimedRecords() == 0 && !running.HasExited && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }

            Assert.False(running.HasExited, "the convert ended before it could be killed: " + running.Stderr);
            running.Kill();
        }

        long fetchedBefore = (await _nginx.SettledRequestsAsync(path)).Where(r => r.Range is not null).Sum(r => r.BytesSent);
        var rerun = await ConvertAsync(_nginx.HttpUrl(path), _temp.File("rerun.raw"));
        AssertExact(rerun, data, _temp.File("rerun.raw"));
        long fetchedByRerun = (await _nginx.SettledRequestsAsync(path)).Where(r => r.Range is not null).Sum(r => r.BytesSent) - fetchedBefore;
        Assert.True(fetchedByRerun < data.Length, $"the rerun fetched {fetchedByRerun} bytes of {data.Length}: it used nothing the killed run kept");
    }

    /// <summary>Sound records in the one index file now (0 before it exists).</summary>
    private int ClaimedRecords()
    {
        try
        {
            return IndexFiles() is [string index] && File.ReadAllBytes(index) is var bytes && DiskCacheIndex.TryReadHeader(bytes, out _, out int size, out _)
                ? (bytes.Length - size) / DiskCacheIndex.RecordSize
                : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    [Fact]
    public async Task A_changed_remote_file_gives_the_new_bytes_and_drops_the_old_entry()
    {
        string path = _nginx.Put("changing.img", ImageFactory.Random(3 << 20, seed: 4));
        AssertExact(await ConvertAsync(_nginx.HttpUrl(path), _temp.File("old.raw")), File.ReadAllBytes(Path.Combine(_nginx.DocRoot, "changing.img")), _temp.File("old.raw"));
        string oldIndex = Assert.Single(IndexFiles());

        // Same size, new bytes, a new modification time: nginx's ETag and Last-Modified change.
        var changed = ImageFactory.Random(3 << 20, seed: 5);
        _nginx.Put("changing.img", changed);
        File.SetLastWriteTimeUtc(Path.Combine(_nginx.DocRoot, "changing.img"), DateTime.UtcNow.AddHours(1));

        var r = await ConvertAsync(_nginx.HttpUrl(path), _temp.File("new.raw"));
        AssertExact(r, changed, _temp.File("new.raw"));
        Assert.Contains("older version is dropped", r.Stderr, StringComparison.Ordinal);
        string newIndex = Assert.Single(IndexFiles());
        Assert.NotEqual(oldIndex, newIndex);
        Assert.Single(Directory.GetFiles(CacheDir, "*.data"));
    }

    [Fact]
    public async Task Cache_max_evicts_the_least_recently_used_file()
    {
        var a = ImageFactory.Random(4 << 20, seed: 6);
        var b = ImageFactory.Random(4 << 20, seed: 7);
        string pa = _nginx.Put("evict-a.img", a);
        string pb = _nginx.Put("evict-b.img", b);
        string Spec(string p) => "json:" + System.Text.Json.JsonSerializer.Serialize(new { driver = "raw", file = new Dictionary<string, string> { ["driver"] = "http", ["url"] = _nginx.HttpUrl(p), ["cache-dir"] = CacheDir, ["cache-max"] = "6M" } });

        AssertExact(await UrlDiskCli.RunAsync(ConvertArgs(Spec(pa), _temp.File("a.raw"))), a, _temp.File("a.raw"));
        var r = await UrlDiskCli.RunAsync(ConvertArgs(Spec(pb), _temp.File("b.raw")));
        AssertExact(r, b, _temp.File("b.raw"));

        Assert.Contains("evicting", r.Stderr, StringComparison.Ordinal);
        var entry = Assert.Single(DiskCacheStore.List(CacheDir));
        Assert.EndsWith(pb, entry.Header!.Location, StringComparison.Ordinal);
        Assert.Equal(b.Length, entry.PresentBytes);
    }

    [Fact]
    public async Task Cache_list_shows_the_url_without_credentials_and_clear_empties_it()
    {
        var data = ImageFactory.Random((1 << 20) + 5, seed: 8);
        string path = _nginx.Put("auth/listed.img", data);
        AssertExact(await ConvertAsync(_nginx.HttpUrlWithCredentials(path), _temp.File("l.raw")), data, _temp.File("l.raw"));

        var list = await UrlDiskCli.RunAsync("cache", "list", CacheDir);
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains($"{_nginx.HttpUrl(path)}  size {data.Length}  present {data.Length} (100%)  last used ", list.Stdout, StringComparison.Ordinal);
        Assert.Contains($"1 entry, {data.Length} bytes present in {CacheDir}", list.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(NginxServer.AuthPassword, list.Stdout + list.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(NginxServer.AuthUser + ":", list.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(NginxServer.AuthUser + "@", list.Stdout, StringComparison.Ordinal);

        var clear = await UrlDiskCli.RunAsync(["cache", "clear"], environment: new Dictionary<string, string?> { ["URLDISK_CACHE_DIR"] = CacheDir });
        Assert.True(clear.ExitCode == 0, clear.ToString());
        Assert.Equal($"removed 1 entry, {data.Length} bytes, from {CacheDir}", clear.Stdout.Trim());
        Assert.Empty(IndexFiles());
        Assert.Empty(Directory.GetFiles(CacheDir, "*.data"));

        var empty = await UrlDiskCli.RunAsync("cache", "list", "--cache-dir", CacheDir);
        Assert.Contains("0 entries", empty.Stdout, StringComparison.Ordinal);

        var none = await UrlDiskCli.RunAsync(["cache", "list"], environment: new Dictionary<string, string?> { ["URLDISK_CACHE_DIR"] = null });
        Assert.Equal(1, none.ExitCode);
        Assert.Contains("no cache directory", none.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("garbage-header", "discarded")]
    [InlineData("truncated-index", "discarded")]
    [InlineData("flipped-data-byte", "does not match its checksum")]
    public async Task A_damaged_entry_is_noted_and_the_bytes_stay_exact(string damage, string note)
    {
        var data = ImageFactory.Random((2 << 20) + 99, seed: 9);
        string path = _nginx.Put($"damaged-{damage}.img", data);
        AssertExact(await ConvertAsync(_nginx.HttpUrl(path), _temp.File("first.raw")), data, _temp.File("first.raw"));
        string index = Assert.Single(IndexFiles());
        switch (damage)
        {
            case "garbage-header":
                using (var f = File.OpenWrite(index))
                {
                    f.Write("not an index at all"u8);
                }

                break;
            case "truncated-index":
                using (var f = File.OpenWrite(index))
                {
                    f.SetLength(20);
                }

                break;
            default:
                using (var f = File.OpenWrite(Path.ChangeExtension(index, ".data")))
                {
                    f.Position = 300_000;
                    f.WriteByte((byte)(data[300_000] ^ 0x5A));
                }

                break;
        }

        int before = await RangeRequestsAsync(path);
        var r = await ConvertAsync(_nginx.HttpUrl(path), _temp.File("second.raw"));
        AssertExact(r, data, _temp.File("second.raw"));
        Assert.Contains(note, r.Stderr, StringComparison.Ordinal);
        Assert.True(await RangeRequestsAsync(path) > before, "the damaged blocks were not fetched again");
    }

    [Fact]
    public async Task A_file_without_validators_is_read_but_not_kept()
    {
        await using var server = await FaultHttpServer.StartAsync();
        var data = ImageFactory.Random(1 << 20, seed: 10);
        var file = new RangeFile(data);
        file.Replace(data, etag: null, lastModified: null);
        server.Map("/plain.img", file);

        var r = await ConvertAsync(server.Url("/plain.img"), _temp.File("plain.raw"));

        AssertExact(r, data, _temp.File("plain.raw"));
        Assert.Contains("has no validator", r.Stderr, StringComparison.Ordinal);
        Assert.Empty(IndexFiles());
    }

    [Theory]
    [InlineData("cache-dir=DIR,cache-max=lots", "option 'cache-max'")]
    [InlineData("cache-dir=DIR,cache-max=4k", "at least 1M")]
    [InlineData("cache-dir=", "'cache-dir' is empty")]
    [InlineData("cache-max=2G", "'cache-max' needs a disk cache")]
    public async Task Bad_disk_cache_options_are_named(string options, string message)
    {
        var r = await UrlDiskCli.RunAsync(["convert", "--image-opts", $"driver=http,url={_nginx.HttpUrl("/none.img")},{options.Replace("DIR", CacheDir, StringComparison.Ordinal)}", _temp.File("x.raw")],
            environment: new Dictionary<string, string?> { ["URLDISK_CACHE_DIR"] = null });

        Assert.Equal(1, r.ExitCode);
        Assert.Contains(message, r.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(_temp.File("x.raw")));
    }
}
