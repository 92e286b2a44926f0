using System.Buffers.Binary;

namespace UrlDisk.Layers.Compressed;

/// <summary>A filter of an xz block: its id and its encoded properties.</summary>
internal readonly record struct XzFilter(ulong Id, byte[] Properties);

/// <summary>The header of an xz block: its size, the optional sizes it records and its filter chain.</summary>
internal sealed record XzBlockHeader(int Size, long? CompressedSize, long? UncompressedSize, IReadOnlyList<XzFilter> Filters)
{
    public const ulong Lzma2 = 0x21;

    /// <summary>Parses the header at the start of <paramref name="b"/> (a block read at <paramref name="fileOffset"/>).</summary>
    public static XzBlockHeader Parse(ReadOnlySpan<byte> b, long fileOffset)
    {
        if (b.Length < 1 || b[0] == 0)
        {
            throw new ImageFormatException($"xz: block header at offset {fileOffset}: the index starts where the index names a block");
        }

        int size = (b[0] + 1) * 4;
        if (b.Length < size)
        {
            throw new ImageFormatException($"xz: block header at offset {fileOffset}: {size} bytes do not fit in the block");
        }

        var header = b[..size];
        if (BinaryPrimitives.ReadUInt32LittleEndian(header[^4..]) != XzChecksums.Crc32(header[..^4]))
        {
            throw new ImageFormatException($"xz: block header at offset {fileOffset}: CRC32 mismatch");
        }

        byte flags = header[1];
        if ((flags & 0x3C) != 0)
        {
            throw new ImageFormatException($"xz: block header at offset {fileOffset}: reserved flag bits are set (0x{flags:x2})");
        }

        var body = header[..^4];
        int pos = 2;
        long? compressed = (flags & 0x40) != 0 ? (long)Math.Min(XzIndex.ReadVli(body, ref pos, "block header", fileOffset), long.MaxValue) : null;
        long? uncompressed = (flags & 0x80) != 0 ? (long)Math.Min(XzIndex.ReadVli(body, ref pos, "block header", fileOffset), long.MaxValue) : null;
        var filters = new List<XzFilter>();
        for (int i = 0; i <= (flags & 3); i++)
        {
            ulong id = XzIndex.ReadVli(body, ref pos, "block header filter", fileOffset);
            ulong propsSize = XzIndex.ReadVli(body, ref pos, "block header filter", fileOffset);
            if (propsSize > (ulong)(body.Length - pos))
            {
                throw new ImageFormatException($"xz: block header at offset {fileOffset}: filter properties run past the header");
            }

            filters.Add(new XzFilter(id, body.Slice(pos, (int)propsSize).ToArray()));
            pos += (int)propsSize;
        }

        if (body[pos..].ContainsAnyExcept((byte)0))
        {
            throw new ImageFormatException($"xz: block header at offset {fileOffset}: header padding is not zero");
        }

        if (filters[^1].Id != Lzma2 || filters.Take(filters.Count - 1).Any(f => f.Id == Lzma2))
        {
            throw new ImageFormatException($"xz: block header at offset {fileOffset}: the filter chain must end with LZMA2 (0x21) and use it once");
        }

        return new XzBlockHeader(size, compressed, uncompressed, filters);
    }
}
