using UrlDisk.Opening;

namespace UrlDisk.Layers.Compressed;

/// <summary>
/// Puts a decompressing layer between a source and the format, so that probing sees the decompressed bytes
/// (<c>x.qcow2.xz</c> is qcow2, <c>x.raw.gz</c> raw). Multi-block xz gets random access; one big block, gzip and
/// zstd are decoded in order into a fill cache.
/// </summary>
internal static class CompressedLayer
{
    /// <summary>The compression whose magic starts <paramref name="head"/>, if any.</summary>
    public static Compression? Detect(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith(XzIndex.HeaderMagic))
        {
            return Compression.Xz;
        }

        if (head.Length >= 3 && head[0] == 0x1F && head[1] == 0x8B && head[2] == 8)
        {
            return Compression.Gzip;
        }

        return head.StartsWith((ReadOnlySpan<byte>)[0x28, 0xB5, 0x2F, 0xFD]) ? Compression.Zstd : null;
    }

    /// <summary>Wraps <paramref name="file"/> (taking ownership) in the decompressing layer for <paramref name="compression"/>.</summary>
    public static async ValueTask<IBlockDevice> OpenAsync(IBlockDevice file, Compression compression, OpenContext context, CancellationToken cancellationToken)
    {
        long? length = null;
        if (compression == Compression.Xz)
        {
            var blocks = await XzLayout.ReadAsync(file, cancellationToken).ConfigureAwait(false);
            if (blocks.Count > 1 && blocks.All(b => b.UncompressedSize <= XzBlockDevice.MaxBlockSize))
            {
                return new XzBlockDevice(file, blocks);
            }

            length = blocks.Count == 0 ? 0 : blocks[^1].UncompressedEnd;
        }

        var source = new DecompressingSource(file, compression, length);
        return await FillCache.CreateAsync(source, new FillCacheOptions { Directory = context.CacheDirectory, Retries = 0 }, cancellationToken).ConfigureAwait(false);
    }
}
