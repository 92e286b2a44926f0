namespace UrlDisk.IntegrationTests.Ftp;

/// <summary>Many concurrent random reads of a device, each compared byte for byte with the expected image.</summary>
internal static class RandomReads
{
    public static async Task AssertMatchesAsync(IBlockDevice device, byte[] expected, int reads = 120, int parallel = 16, int maxRead = 300_000, int seed = 1)
    {
        Assert.Equal(expected.LongLength, device.Length);
        var rng = new Random(seed);
        var jobs = Enumerable.Range(0, reads).Select(_ =>
        {
            int len = rng.Next(1, maxRead);
            long off = rng.NextInt64(0, expected.Length - len + 1);
            return (off, len);
        }).ToList();
        jobs.Add((expected.Length - 1, 1));
        jobs.Add((0, 512));

        using var gate = new SemaphoreSlim(parallel);
        await Task.WhenAll(jobs.Select(async j =>
        {
            await gate.WaitAsync();
            try
            {
                var buf = new byte[j.len];
                await device.ReadAsync(j.off, buf);
                if (!buf.AsSpan().SequenceEqual(expected.AsSpan((int)j.off, j.len)))
                {
                    Assert.Fail($"bytes {j.off}+{j.len} differ");
                }
            }
            finally
            {
                gate.Release();
            }
        }));
    }

    /// <summary>Reads the whole device in 1 MiB steps and compares.</summary>
    public static async Task AssertWholeAsync(IBlockDevice device, byte[] expected)
    {
        var all = new byte[device.Length];
        for (int off = 0; off < all.Length; off += 1 << 20)
        {
            await device.ReadAsync(off, all.AsMemory(off, Math.Min(1 << 20, all.Length - off)));
        }

        Assert.True(all.AsSpan().SequenceEqual(expected), "whole image differs");
    }
}
