namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Writes any device's contents into a new qcow2 image (what <c>convert -O qcow2 [-c]</c> needs): all-zero
/// clusters are left unallocated, data is written uncompressed or, with <c>compress</c>, cluster by cluster compressed.
/// </summary>
public static class Qcow2Writer
{
    private const int ChunkSize = 4 * 1024 * 1024;

    /// <summary>Creates <paramref name="path"/> with the source's size and copies the source into it; returns the data bytes written.</summary>
    public static async Task<long> ConvertAsync(IBlockDevice source, string path, Qcow2CreateOptions? options = null, bool compress = false,
        IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        long size = (source.Length + 511) & ~511L;
        await using var image = await Qcow2Creator.CreateAndOpenAsync(path, size, options, orderWrites: false, cancellationToken).ConfigureAwait(false);
        long written = await CopyAsync(source, image, compress, progress, cancellationToken).ConfigureAwait(false);
        await image.FlushAsync(cancellationToken).ConfigureAwait(false);
        return written;
    }

    /// <summary>Copies <paramref name="source"/> into an open, empty image (from <see cref="Qcow2Creator.CreateAndOpenAsync(string, long, Qcow2CreateOptions?, CancellationToken)"/>).</summary>
    internal static async Task<long> CopyAsync(IBlockDevice source, Qcow2Image image, bool compress, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        int cs = image.ClusterSize;
        int chunk = Math.Max(ChunkSize, cs);
        var buffer = new byte[chunk];
        long written = 0;
        for (long pos = 0; pos < source.Length; pos += chunk)
        {
            int n = (int)Math.Min(chunk, source.Length - pos);
            if (await IsAllZeroAsync(source, pos, n, cancellationToken).ConfigureAwait(false))
            {
                progress?.Report(pos + n);
                continue;
            }

            await source.ReadAsync(pos, buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            buffer.AsSpan(n).Clear();
            // Runs of non-zero clusters are written together; zero clusters stay unallocated.
            int runStart = -1;
            for (int off = 0; off <= n; off += cs)
            {
                bool data = off < n && buffer.AsSpan(off, Math.Min(cs, n - off)).ContainsAnyExcept((byte)0);
                if (data && compress)
                {
                    int len = (int)Math.Min(cs, image.Length - (pos + off));
                    await image.WriteCompressedAsync((pos + off) / cs, buffer.AsMemory(off, len), cancellationToken).ConfigureAwait(false);
                    written += len;
                    continue;
                }

                if (data && runStart < 0)
                {
                    runStart = off;
                }
                else if (!data && runStart >= 0)
                {
                    int end = Math.Min(off, n);
                    await image.WriteAsync(pos + runStart, buffer.AsMemory(runStart, end - runStart), cancellationToken: cancellationToken).ConfigureAwait(false);
                    written += end - runStart;
                    runStart = -1;
                }
            }

            progress?.Report(pos + n);
        }

        return written;
    }

    private static async ValueTask<bool> IsAllZeroAsync(IBlockDevice source, long offset, int length, CancellationToken cancellationToken)
    {
        if (!source.Info.ReportsAllocation)
        {
            return false;
        }

        var extents = await source.GetExtentsAsync(offset, length, cancellationToken).ConfigureAwait(false);
        return extents.Count > 0 && extents[^1].End >= offset + length && extents.All(e => e.IsZero);
    }
}
