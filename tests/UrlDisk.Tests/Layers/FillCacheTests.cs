using UrlDisk.Layers;

namespace UrlDisk.Tests.Layers;

public class FillCacheTests
{
    /// <summary>An in-memory sequential source whose chunks are released one gate at a time.</summary>
    private sealed class GatedSource(byte[] data, bool announceLength, int chunk = 1000) : ISequentialSource
    {
        public SemaphoreSlim Gate { get; } = new(0);
        public int Calls;
        public int FailFirstCallsAt = -1;
        public int FailingCalls;
        public bool Disposed;

        public string Protocol => "mem";
        public string DisplayName => "mem://x";
        public long? Length => announceLength ? data.Length : null;
        public IReadOnlyDictionary<string, object?> Details { get; } = new Dictionary<string, object?> { ["protocol"] = "mem" };

        public async Task CopyToAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken ct)
        {
            int call = Interlocked.Increment(ref Calls);
            for (int off = 0; off < data.Length; off += chunk)
            {
                if (call <= FailingCalls && off >= FailFirstCallsAt)
                {
                    throw new SourceException("connection reset") { IsTransient = true };
                }

                await Gate.WaitAsync(ct);
                await sink(data.AsMemory(off, Math.Min(chunk, data.Length - off)), ct);
            }
        }

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }

    private static byte[] Data(int n) => Enumerable.Range(0, n).Select(i => (byte)(i * 7)).ToArray();

    [Fact]
    public async Task A_read_returns_as_soon_as_its_range_is_filled()
    {
        var data = Data(10_000);
        var src = new GatedSource(data, announceLength: true);
        var cache = await FillCache.CreateAsync(src, new FillCacheOptions { Directory = Path.GetTempPath() }, default);
        string path = cache.CachePath;
        Assert.Equal(10_000, cache.Length);

        var buf = new byte[500];
        var read = cache.ReadAsync(2500, buf).AsTask();
        src.Gate.Release(2); // 2000 bytes: not yet
        await Task.Delay(50);
        Assert.False(read.IsCompleted);
        src.Gate.Release(1); // 3000 bytes: covers 2500..3000
        await read.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(data.AsSpan(2500, 500).ToArray(), buf);

        src.Gate.Release(100);
        var all = new byte[data.Length];
        await cache.ReadAsync(0, all);
        Assert.Equal(data, all);
        Assert.Equal(1, src.Calls);
        var fill = (IReadOnlyDictionary<string, object?>)cache.Info.Details["fill-cache"]!;
        Assert.Equal(10_000L, fill["filled"]);

        await cache.DisposeAsync();
        Assert.True(src.Disposed);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task Unknown_length_waits_for_the_end_of_the_transfer()
    {
        var data = Data(4321);
        var src = new GatedSource(data, announceLength: false);
        src.Gate.Release(100);
        await using var cache = await FillCache.CreateAsync(src, null, default);
        Assert.Equal(4321, cache.Length);
        var buf = new byte[21];
        await cache.ReadAsync(4300, buf);
        Assert.Equal(data.AsSpan(4300).ToArray(), buf);
    }

    [Fact]
    public async Task A_transient_failure_restarts_from_zero_and_keeps_what_was_filled()
    {
        var data = Data(5000);
        var src = new GatedSource(data, announceLength: true) { FailingCalls = 1, FailFirstCallsAt = 3000 };
        src.Gate.Release(100);
        await using var cache = await FillCache.CreateAsync(src, new FillCacheOptions { Retries = 2 }, default);
        var all = new byte[data.Length];
        await cache.ReadAsync(0, all);
        Assert.Equal(data, all);
        Assert.Equal(2, src.Calls);
    }

    /// <summary>Each transfer gets <paramref name="step"/> bytes further than the one before, then breaks.</summary>
    private sealed class CreepingSource(byte[] data, int step) : ISequentialSource
    {
        public int Calls;

        public string Protocol => "mem";
        public string DisplayName => "mem://creeping";
        public long? Length => data.Length;
        public IReadOnlyDictionary<string, object?> Details { get; } = new Dictionary<string, object?> { ["protocol"] = "mem" };

        public async Task CopyToAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken ct)
        {
            int reach = Interlocked.Increment(ref Calls) * step;
            await sink(data.AsMemory(0, Math.Min(reach, data.Length)), ct);
            if (reach < data.Length)
            {
                throw new SourceException("connection reset") { IsTransient = true };
            }
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Fact]
    public async Task Transfers_that_each_get_further_are_not_counted_against_the_retries()
    {
        var data = Data(10_000);
        var src = new CreepingSource(data, step: 1000);
        await using var cache = await FillCache.CreateAsync(src, new FillCacheOptions { Retries = 1 }, default);
        var all = new byte[data.Length];
        await cache.ReadAsync(0, all).AsTask().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(data, all);
        Assert.Equal(10, src.Calls);
    }

    [Fact]
    public async Task A_lasting_failure_reaches_waiting_and_later_readers()
    {
        var src = new GatedSource(Data(5000), announceLength: true) { FailingCalls = 100, FailFirstCallsAt = 1000 };
        src.Gate.Release(100);
        await using var cache = await FillCache.CreateAsync(src, new FillCacheOptions { Retries = 1 }, default);
        var e = await Assert.ThrowsAsync<SourceException>(async () => await cache.ReadAsync(4000, new byte[10]));
        Assert.Contains("connection reset", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SourceException>(async () => await cache.ReadAsync(3000, new byte[10]));

        // Bytes filled before the failure are still served.
        var head = new byte[100];
        await cache.ReadAsync(0, head);
        Assert.Equal(Data(100), head);
    }

    [Fact]
    public async Task A_source_shorter_than_announced_is_a_changed_file()
    {
        var src = new GatedSource(Data(3000), announceLength: false);
        src.Gate.Release(100);
        var shorter = new AnnouncingSource(src, 5000);
        await using var cache = await FillCache.CreateAsync(shorter, null, default);
        await Assert.ThrowsAsync<RemoteFileChangedException>(async () => await cache.ReadAsync(4000, new byte[10]));
    }

    [Fact]
    public async Task Cancelling_a_waiting_read_leaves_the_fill_running()
    {
        var data = Data(3000);
        var src = new GatedSource(data, announceLength: true);
        await using var cache = await FillCache.CreateAsync(src, null, default);
        using var cts = new CancellationTokenSource(50);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await cache.ReadAsync(0, new byte[10], cts.Token));
        src.Gate.Release(100);
        var all = new byte[3000];
        await cache.ReadAsync(0, all);
        Assert.Equal(data, all);
    }

    [Fact]
    public async Task Kept_file_survives_dispose()
    {
        var data = Data(2000);
        var src = new GatedSource(data, announceLength: true);
        src.Gate.Release(100);
        var cache = await FillCache.CreateAsync(src, new FillCacheOptions { KeepFile = true }, default);
        await cache.ReadAsync(1999, new byte[1]);
        string path = cache.CachePath;
        await cache.DisposeAsync();
        try
        {
            Assert.Equal(data, await File.ReadAllBytesAsync(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private sealed class AnnouncingSource(ISequentialSource inner, long length) : ISequentialSource
    {
        public string Protocol => inner.Protocol;
        public string DisplayName => inner.DisplayName;
        public long? Length => length;
        public IReadOnlyDictionary<string, object?> Details => inner.Details;
        public Task CopyToAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken ct) => inner.CopyToAsync(sink, ct);
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
