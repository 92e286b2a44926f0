using UrlDisk.Formats.Qcow2;

namespace UrlDisk.Tests.Qcow2;

public class L2TableCacheTests
{
    [Fact]
    public async Task Concurrent_lookups_share_one_load_and_the_cache_stays_bounded()
    {
        var cache = new L2TableCache(4);
        int loads = 0;
        var gate = new TaskCompletionSource();
        Task<ulong[]> Load(long offset)
        {
            Interlocked.Increment(ref loads);
            return gate.Task.ContinueWith(_ => new ulong[] { (ulong)offset }, TaskScheduler.Default);
        }

        var waiting = Enumerable.Range(0, 10).Select(_ => cache.GetAsync(4096, Load)).ToList();
        gate.SetResult();
        var tables = await Task.WhenAll(waiting);
        Assert.Equal(1, loads);
        Assert.All(tables, t => Assert.Same(tables[0], t));

        for (long i = 1; i <= 10; i++)
        {
            await cache.GetAsync(i * 65536, Load);
        }

        // 4096 was evicted by the newer tables and is loaded again.
        await cache.GetAsync(4096, Load);
        Assert.Equal(12, loads);
    }

    [Fact]
    public async Task A_failed_load_is_not_cached()
    {
        var cache = new L2TableCache(4);
        int calls = 0;
        Task<ulong[]> Failing(long offset)
        {
            calls++;
            return calls == 1 ? Task.FromException<ulong[]>(new IOException("reset")) : Task.FromResult(new ulong[1]);
        }

        await Assert.ThrowsAsync<IOException>(() => cache.GetAsync(0, Failing));
        Assert.Single(await cache.GetAsync(0, Failing));
        Assert.Equal(2, calls);
    }
}
