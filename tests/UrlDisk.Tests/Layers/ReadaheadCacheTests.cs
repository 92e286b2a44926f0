using UrlDisk.Layers;
using UrlDisk.Tests.Core;

namespace UrlDisk.Tests.Layers;

public class ReadaheadCacheTests
{
    private static byte[] Pattern(int size) => Enumerable.Range(0, size).Select(i => (byte)((i * 31) ^ (i >> 9))).ToArray();

    [Fact]
    public async Task Small_reads_return_the_right_bytes_and_a_second_pass_makes_no_request()
    {
        var data = Pattern(3 * 1024 * 1024 + 123);
        var inner = new MemoryBlockDevice(data);
        await using var cache = new ReadaheadCache(inner, readahead: 256 * 1024, cacheSize: 64L << 20);
        var rng = new Random(1);
        for (int pass = 0; pass < 2; pass++)
        {
            int before = inner.Reads;
            for (long off = 0; off < data.Length; off += 4096)
            {
                int len = (int)Math.Min(4096, data.Length - off);
                var buf = new byte[len];
                await cache.ReadAsync(off, buf);
                Assert.Equal(data.AsSpan((int)off, len).ToArray(), buf);
            }

            if (pass == 1)
            {
                Assert.Equal(before, inner.Reads);
            }
            else
            {
                // 4 KiB reads with 256 KiB readahead: one request per 320 KiB or so, never one per read.
                Assert.InRange(inner.Reads, 1, data.Length / (256 * 1024) + 2);
            }
        }
    }

    [Fact]
    public async Task Unaligned_reads_across_blocks_and_the_short_last_block()
    {
        var data = Pattern(1_000_003);
        await using var cache = new ReadaheadCache(new MemoryBlockDevice(data), readahead: 0, cacheSize: 1 << 20);
        var rng = new Random(7);
        for (int i = 0; i < 500; i++)
        {
            int off = rng.Next(data.Length);
            int len = rng.Next(1, Math.Min(300_000, data.Length - off) + 1);
            var buf = new byte[len];
            await cache.ReadAsync(off, buf);
            Assert.True(data.AsSpan(off, len).SequenceEqual(buf), $"read {off}+{len}");
        }
    }

    [Fact]
    public async Task Concurrent_reads_of_one_region_share_one_transfer()
    {
        var data = Pattern(1 << 20);
        var gate = new TaskCompletionSource();
        var inner = new MemoryBlockDevice(data) { BeforeRead = (_, _) => gate.Task };
        await using var cache = new ReadaheadCache(inner, readahead: 256 * 1024, cacheSize: 8 << 20);
        var reads = Enumerable.Range(0, 16).Select(async i =>
        {
            var buf = new byte[4096];
            await cache.ReadAsync(i * 4096, buf);
            return buf;
        }).ToList();
        await Task.Delay(50);
        gate.SetResult();
        var results = await Task.WhenAll(reads);
        Assert.Equal(1, inner.Reads);
        for (int i = 0; i < results.Length; i++)
        {
            Assert.Equal(data.AsSpan(i * 4096, 4096).ToArray(), results[i]);
        }
    }

    [Fact]
    public async Task Memory_is_bounded_by_cache_size()
    {
        var data = Pattern(16 << 20);
        var inner = new MemoryBlockDevice(data);
        await using var cache = new ReadaheadCache(inner, readahead: 0, cacheSize: 1 << 20);
        var buf = new byte[4096];
        for (long off = 0; off < data.Length; off += ReadaheadCache.BlockSize)
        {
            await cache.ReadAsync(off, buf);
        }

        // The first blocks were evicted (16 MiB read through a 1 MiB cache): reading them again asks again.
        int before = inner.Reads;
        await cache.ReadAsync(0, buf);
        Assert.Equal(before + 1, inner.Reads);
    }

    [Fact]
    public async Task A_failed_fetch_reaches_every_waiter_and_the_next_read_asks_again()
    {
        var data = Pattern(1 << 20);
        int calls = 0;
        var inner = new MemoryBlockDevice(data)
        {
            BeforeRead = (_, _) => Interlocked.Increment(ref calls) == 1 ? Task.FromException(new IOException("boom")) : Task.CompletedTask,
        };
        await using var cache = new ReadaheadCache(inner, readahead: 0, cacheSize: 8 << 20);
        var buf = new byte[100];
        await Assert.ThrowsAsync<IOException>(async () => await cache.ReadAsync(10, buf));
        await cache.ReadAsync(10, buf);
        Assert.Equal(data.AsSpan(10, 100).ToArray(), buf);
    }

    [Fact]
    public async Task Large_reads_bypass_the_cache()
    {
        var data = Pattern(8 << 20);
        var inner = new MemoryBlockDevice(data);
        await using var cache = new ReadaheadCache(inner, readahead: 256 * 1024, cacheSize: 8 << 20);
        var buf = new byte[4 << 20];
        await cache.ReadAsync(1 << 20, buf);
        Assert.Equal(data.AsSpan(1 << 20, 4 << 20).ToArray(), buf);
        Assert.Equal(1, inner.Reads);
    }

    [Fact]
    public async Task A_large_read_of_prefetched_blocks_uses_them()
    {
        var data = Pattern(8 << 20);
        var inner = new MemoryBlockDevice(data);
        await using var cache = new ReadaheadCache(inner, readahead: 256 * 1024, cacheSize: 8 << 20);
        await cache.PrefetchAsync(1 << 20, 1 << 20);
        int before = inner.Reads;
        var buf = new byte[1 << 20];
        await cache.ReadAsync(1 << 20, buf);
        Assert.Equal(data.AsSpan(1 << 20, 1 << 20).ToArray(), buf);
        Assert.Equal(before, inner.Reads);
    }

    [Fact]
    public async Task A_sequential_reader_entering_the_readahead_window_starts_the_next_one()
    {
        var data = Pattern(4 << 20);
        var inner = new MemoryBlockDevice(data);
        await using var cache = new ReadaheadCache(inner, readahead: 4 * ReadaheadCache.BlockSize, cacheSize: 8 << 20);
        var buf = new byte[4096];
        await cache.ReadAsync(0, buf);                            // miss: blocks 0..4
        Assert.Equal(1, inner.Reads);
        await cache.ReadAsync(ReadaheadCache.BlockSize, buf);    // first read-ahead block: fetch 5..12 now
        await cache.PrefetchAsync(5 * ReadaheadCache.BlockSize, 8 * ReadaheadCache.BlockSize); // waits for it, asks nothing new
        Assert.Equal(2, inner.Reads);
        for (long off = 2 * ReadaheadCache.BlockSize; off < 13 * ReadaheadCache.BlockSize; off += 4096)
        {
            await cache.ReadAsync(off, buf);
            Assert.Equal(data.AsSpan((int)off, 4096).ToArray(), buf);
        }

        // Reaching block 5 (the next window's marker) fetched blocks 13..20 as well; nothing was read twice.
        Assert.Equal(3, inner.Reads);
    }
}
