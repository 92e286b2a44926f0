namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>Test images whose bytes follow from a seed, so a failure can be reproduced byte for byte.</summary>
public static class ImageFactory
{
    /// <summary>Random bytes throughout.</summary>
    public static byte[] Random(int size, int seed)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>
    /// Random data with zero regions of <paramref name="regionSize"/> bytes: the first and last regions
    /// are data, about a third of the others are zero (which ones follows from the seed).
    /// </summary>
    public static byte[] WithZeroRegions(int size, int seed, int regionSize = 1 << 20)
    {
        var data = Random(size, seed);
        var pick = new Random(seed ^ 0x5a5a5a5a);
        int regions = (size + regionSize - 1) / regionSize;
        for (int r = 1; r < regions - 1; r++)
        {
            if (pick.Next(3) == 0)
            {
                data.AsSpan(r * regionSize, Math.Min(regionSize, size - (r * regionSize))).Clear();
            }
        }

        return data;
    }

    /// <summary>Writes <paramref name="data"/> leaving all-zero 64 KiB blocks as holes in the file, as a sparse image would be.</summary>
    public static void WriteSparse(string path, ReadOnlySpan<byte> data)
    {
        const int Block = 64 * 1024;
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read);
        f.SetLength(data.Length);
        for (int off = 0; off < data.Length; off += Block)
        {
            var block = data.Slice(off, Math.Min(Block, data.Length - off));
            if (block.ContainsAnyExcept((byte)0))
            {
                f.Position = off;
                f.Write(block);
            }
        }
    }

    /// <summary>The first offset where the two differ, or -1 (for messages that say where bytes went wrong).</summary>
    public static long FirstDifference(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual)
    {
        int common = Math.Min(expected.Length, actual.Length);
        int i = expected[..common].CommonPrefixLength(actual[..common]);
        if (i < common)
        {
            return i;
        }

        return expected.Length == actual.Length ? -1 : common;
    }

    /// <summary>Fails with the first differing offset instead of dumping megabytes.</summary>
    public static void AssertSameBytes(byte[] expected, byte[] actual, string what) => AssertSameBytes(expected.AsSpan(), actual.AsSpan(), what);

    /// <summary>Fails with the first differing offset instead of dumping megabytes.</summary>
    public static void AssertSameBytes(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, string what)
    {
        long diff = FirstDifference(expected, actual);
        if (diff >= 0)
        {
            Assert.Fail($"{what}: bytes differ at offset {diff} (expected length {expected.Length}, actual {actual.Length})");
        }
    }
}
