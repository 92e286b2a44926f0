using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>Reads through the library the way a consumer would, and checks the bytes against the source.</summary>
internal static class DeviceReads
{
    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);

    /// <summary>Opens like the CLI does; without <paramref name="format"/> the format is probed, which reads the first 64 KiB.</summary>
    public static async Task<IBlockDevice> OpenAsync(string spec, CancellationToken ct, string? format = null)
        => await ImageOpener.OpenAsync(spec, format, null, ct);

    /// <summary>Opens as raw without probing, so opening reads nothing and every fault shows up in the reads.</summary>
    public static Task<IBlockDevice> OpenRawAsync(string spec, CancellationToken ct) => OpenAsync(spec, ct, "raw");

    /// <summary>Reads <paramref name="count"/> seeded random (offset, length) pieces, some crossing readahead boundaries, and compares each.</summary>
    public static async Task AssertRandomReadsAsync(IBlockDevice device, byte[] expected, int count, int seed, CancellationToken ct)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var (offset, length) = Piece(rng, expected.Length);
            var buffer = new byte[length];
            await device.ReadAsync(offset, buffer, ct);
            ImageFactory.AssertSameBytes(expected.AsSpan(offset, length), buffer, $"read {i} at offset {offset} length {length}");
        }
    }

    /// <summary>Many readers at once, each with its own seeded pieces.</summary>
    public static async Task AssertConcurrentReadsAsync(IBlockDevice device, byte[] expected, int readers, int readsEach, int seed, CancellationToken ct)
    {
        var tasks = Enumerable.Range(0, readers).Select(r => Task.Run(() => AssertRandomReadsAsync(device, expected, readsEach, seed + r, ct), ct));
        await Task.WhenAll(tasks);
    }

    /// <summary>The whole device in 1 MiB reads.</summary>
    public static async Task<byte[]> ReadAllAsync(IBlockDevice device, CancellationToken ct)
    {
        var all = new byte[device.Length];
        for (long off = 0; off < all.Length; off += 1 << 20)
        {
            int n = (int)Math.Min(1 << 20, all.Length - off);
            await device.ReadAsync(off, all.AsMemory((int)off, n), ct);
        }

        return all;
    }

    private static (int Offset, int Length) Piece(Random rng, int size)
    {
        // A mix of tiny unaligned reads, sector-sized ones, large ones and reads that end at the last byte.
        int length = rng.Next(4) switch
        {
            0 => rng.Next(1, 100),
            1 => 512 * rng.Next(1, 9),
            2 => rng.Next(64 * 1024, 700 * 1024),
            _ => rng.Next(1, 5000),
        };
        length = Math.Min(length, size);
        int offset = rng.Next(5) == 0 ? size - length : rng.Next(0, size - length + 1);
        return (offset, length);
    }
}
