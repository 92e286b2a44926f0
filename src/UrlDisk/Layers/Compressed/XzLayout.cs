namespace UrlDisk.Layers.Compressed;

/// <summary>
/// Finds every block of an xz file from its end, as xz --list and nbdkit's xz filter do: skip stream padding,
/// read the stream footer, the index before it, and the stream header the index sizes lead back to; repeat for
/// the stream before. Only the footers, indexes and headers are read.
/// </summary>
internal static class XzLayout
{
    /// <summary>Bound on an index held in memory (a 1 TiB image in 1 MiB blocks needs about 6 MiB).</summary>
    public const long MaxIndexSize = 64L << 20;

    /// <summary>Stream padding searched backwards: more is refused rather than read word by word.</summary>
    private const int MaxPadding = 64 * 1024;

    public static async ValueTask<IReadOnlyList<XzBlock>> ReadAsync(IBlockDevice file, CancellationToken cancellationToken)
    {
        long pos = file.Length;
        if (pos % 4 != 0 || pos < XzIndex.StreamHeaderSize + XzIndex.StreamFooterSize + 8)
        {
            throw new ImageFormatException($"xz: the file is {pos} bytes; an xz file is a multiple of 4 and at least 32 bytes");
        }

        var streams = new List<List<XzBlock>>();
        var twelve = new byte[12];
        while (pos > 0)
        {
            pos = await SkipPaddingAsync(file, pos, cancellationToken).ConfigureAwait(false);
            if (pos < XzIndex.StreamHeaderSize + XzIndex.StreamFooterSize + 8)
            {
                throw new ImageFormatException($"xz: {pos} bytes before offset {pos} cannot hold a stream");
            }

            long footerOffset = pos - XzIndex.StreamFooterSize;
            await file.ReadAsync(footerOffset, twelve, cancellationToken).ConfigureAwait(false);
            var (indexSize, flags) = XzIndex.ParseFooter(twelve, footerOffset);
            long indexOffset = footerOffset - indexSize;
            if (indexSize > MaxIndexSize || indexOffset < XzIndex.StreamHeaderSize)
            {
                throw new ImageFormatException($"xz: stream footer at offset {footerOffset}: an index of {indexSize} bytes does not fit before it (or is over {MaxIndexSize} bytes)");
            }

            var index = new byte[indexSize];
            await file.ReadAsync(indexOffset, index, cancellationToken).ConfigureAwait(false);
            var records = XzIndex.ParseIndex(index, indexOffset);
            long packed = 0;
            foreach (var (unpadded, _) in records)
            {
                packed += (unpadded + 3) & ~3L;
                if (packed > indexOffset)
                {
                    break;
                }
            }

            long streamOffset = indexOffset - packed - XzIndex.StreamHeaderSize;
            if (streamOffset < 0)
            {
                throw new ImageFormatException($"xz: index at offset {indexOffset}: its blocks ({packed} bytes) do not fit before it");
            }

            await file.ReadAsync(streamOffset, twelve, cancellationToken).ConfigureAwait(false);
            if (XzIndex.ParseHeader(twelve, streamOffset) != flags)
            {
                throw new ImageFormatException($"xz: stream header at offset {streamOffset}: flags differ from the stream footer's at {footerOffset}");
            }

            var blocks = new List<XzBlock>(records.Count);
            long at = streamOffset + XzIndex.StreamHeaderSize;
            int check = XzIndex.CheckTypeOf(flags);
            foreach (var (unpadded, uncompressed) in records)
            {
                if (unpadded <= XzIndex.CheckSize(check) + 8)
                {
                    throw new ImageFormatException($"xz: index at offset {indexOffset}: a block of {unpadded} bytes cannot hold a header, data and a {XzIndex.CheckSize(check)}-byte check");
                }

                blocks.Add(new XzBlock(at, unpadded, 0, uncompressed, check));
                at += (unpadded + 3) & ~3L;
            }

            streams.Add(blocks);
            pos = streamOffset;
        }

        var all = new List<XzBlock>();
        long offset = 0;
        for (int s = streams.Count - 1; s >= 0; s--)
        {
            foreach (var b in streams[s])
            {
                if (b.UncompressedSize > long.MaxValue - offset)
                {
                    throw new ImageFormatException("xz: the uncompressed sizes of the blocks overflow");
                }

                if (b.UncompressedSize > 0)
                {
                    all.Add(b with { UncompressedOffset = offset });
                }

                offset += b.UncompressedSize;
            }
        }

        return all;
    }

    private static async ValueTask<long> SkipPaddingAsync(IBlockDevice file, long pos, CancellationToken cancellationToken)
    {
        var word = new byte[4];
        long start = pos;
        while (pos >= 4)
        {
            await file.ReadAsync(pos - 4, word, cancellationToken).ConfigureAwait(false);
            if (word.AsSpan().ContainsAnyExcept((byte)0))
            {
                return pos;
            }

            pos -= 4;
            if (start - pos > MaxPadding)
            {
                throw new ImageFormatException($"xz: more than {MaxPadding} bytes of stream padding before offset {start}");
            }
        }

        return pos;
    }
}
