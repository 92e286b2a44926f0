using Microsoft.Extensions.Logging.Abstractions;
using UrlDisk.Layers.DiskCache;
using UrlDisk.Sources;
using UrlDisk.Tests.Core;

namespace UrlDisk.Tests.Layers;

public sealed class DiskCacheTests : IDisposable
{
    private const int Block = 4096;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"urldisk-diskcache-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static byte[] Bytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private DiskCacheSettings Settings(long max = DiskCacheSettings.DefaultMaxBytes) => new(_dir, max);

    private IBlockDevice Open(IdentifiedDevice source, long max = DiskCacheSettings.DefaultMaxBytes)
        => DiskCache.Wrap(source, Settings(max), NullLogger.Instance, Block);

    [Fact]
    public async Task A_second_open_of_the_same_version_reads_nothing_from_the_source()
    {
        var data = Bytes(10 * Block + 123, 1);
        var first = new IdentifiedDevice(data, "etag=1");
        await using (var cache = Open(first))
        {
            Assert.IsType<DiskCache>(cache);
            var buffer = new byte[data.Length];
            await cache.ReadAsync(0, buffer);
            Assert.Equal(data, buffer);
        }

        var second = new IdentifiedDevice(data, "etag=1");
        await using (var cache = Open(second))
        {
            var buffer = new byte[5000];
            await cache.ReadAsync(3 * Block + 7, buffer);
            Assert.Equal(data.AsSpan(3 * Block + 7, 5000).ToArray(), buffer);
            var tail = new byte[200];
            await cache.ReadAsync(data.Length - 200, tail);
            Assert.Equal(data.AsSpan(data.Length - 200).ToArray(), tail);
        }

        Assert.Equal(0, second.Reads);
    }

    [Fact]
    public async Task Only_the_blocks_not_present_are_fetched()
    {
        var data = Bytes(8 * Block, 2);
        await using (var cache = Open(new IdentifiedDevice(data, "etag=1")))
        {
            await cache.ReadAsync(2 * Block, new byte[Block]);
        }

        var second = new IdentifiedDevice(data, "etag=1");
        await using (var cache = Open(second))
        {
            var buffer = new byte[4 * Block];
            await cache.ReadAsync(0, buffer);
            Assert.Equal(data.AsSpan(0, 4 * Block).ToArray(), buffer);
        }

        // Blocks 0-1 and 3: two runs around the present block 2.
        Assert.Equal([(0L, 2 * Block), (3L * Block, Block)], second.ReadRanges);
    }

    [Fact]
    public async Task A_changed_file_starts_a_fresh_entry_and_the_old_one_is_dropped()
    {
        await using (var cache = Open(new IdentifiedDevice(Bytes(4 * Block, 3), "etag=1")))
        {
            await cache.ReadAsync(0, new byte[4 * Block]);
        }

        var changed = Bytes(4 * Block, 4);
        var source = new IdentifiedDevice(changed, "etag=2");
        await using (var cache = Open(source))
        {
            var buffer = new byte[4 * Block];
            await cache.ReadAsync(0, buffer);
            Assert.Equal(changed, buffer);
        }

        Assert.True(source.Reads > 0);
        var entry = Assert.Single(DiskCacheStore.List(_dir));
        Assert.Equal("etag=2", entry.Header!.Validators);
    }

    [Fact]
    public async Task Local_bytes_that_fail_their_checksum_are_fetched_again()
    {
        var data = Bytes(4 * Block, 5);
        await using (var cache = Open(new IdentifiedDevice(data, "etag=1")))
        {
            await cache.ReadAsync(0, new byte[4 * Block]);
        }

        string dataFile = Directory.GetFiles(_dir, "*.data").Single();
        using (var f = File.OpenWrite(dataFile))
        {
            f.Position = Block + 10;
            f.WriteByte((byte)(data[Block + 10] ^ 0xFF));
        }

        var second = new IdentifiedDevice(data, "etag=1");
        await using (var cache = Open(second))
        {
            var buffer = new byte[4 * Block];
            await cache.ReadAsync(0, buffer);
            Assert.Equal(data, buffer);
        }

        Assert.Equal([(1L * Block, Block)], second.ReadRanges);
    }

    [Fact]
    public async Task A_file_without_validators_is_not_cached()
    {
        var source = new IdentifiedDevice(Bytes(Block, 6), validators: null);

        await using var device = Open(source);

        Assert.Same(source, device);
        Assert.Empty(Directory.Exists(_dir) ? Directory.GetFiles(_dir, "*.index") : []);
    }

    [Fact]
    public async Task Past_cache_max_the_least_recently_used_entry_is_evicted()
    {
        // Room for 6 blocks: the second 4-block file pushes the first out.
        long max = 6 * Block;
        var a = Bytes(4 * Block, 7);
        var b = Bytes(4 * Block, 8);
        await using (var cache = Open(new IdentifiedDevice(a, "etag=a", "http://h/a"), max))
        {
            await cache.ReadAsync(0, new byte[a.Length]);
        }

        await using (var cache = Open(new IdentifiedDevice(b, "etag=b", "http://h/b"), max))
        {
            var buffer = new byte[b.Length];
            await cache.ReadAsync(0, buffer);
            Assert.Equal(b, buffer);
        }

        var entry = Assert.Single(DiskCacheStore.List(_dir));
        Assert.Equal("http://h/b", entry.Header!.Location);
        Assert.Equal(4L * Block, entry.PresentBytes);
    }

    /// <summary>A memory device that says which file it is, and records the ranges read from it.</summary>
    private sealed class IdentifiedDevice(byte[] data, string? validators, string location = "http://host/disk.img") : BlockDevice, IHasContentIdentity
    {
        private readonly MemoryBlockDevice _memory = new(data);
        private readonly List<(long, int)> _ranges = [];

        public int Reads => _memory.Reads;

        public IReadOnlyList<(long Offset, int Length)> ReadRanges
        {
            get
            {
                lock (_ranges)
                {
                    return [.. _ranges];
                }
            }
        }

        public ContentIdentity? ContentIdentity { get; } = new(location, data.Length, validators);

        public override long Length => data.Length;

        public override BlockDeviceInfo Info { get; } = new() { Driver = "memory", DisplayName = location };

        protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        {
            lock (_ranges)
            {
                _ranges.Add((offset, buffer.Length));
            }

            return _memory.ReadAsync(offset, buffer, cancellationToken);
        }
    }
}
