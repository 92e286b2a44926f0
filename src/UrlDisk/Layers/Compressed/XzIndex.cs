using System.Buffers.Binary;

namespace UrlDisk.Layers.Compressed;

/// <summary>One block of an xz file: where it is, how long it is packed and unpacked, and its stream's check.</summary>
internal readonly record struct XzBlock(long FileOffset, long UnpaddedSize, long UncompressedOffset, long UncompressedSize, int CheckType)
{
    public long UncompressedEnd => UncompressedOffset + UncompressedSize;
}

/// <summary>
/// The pure parts of the xz container (tukaani's "The .xz File Format" 1.1): stream header and footer, the index,
/// variable-length integers. Every error names the structure and its offset in the file.
/// </summary>
internal static class XzIndex
{
    public const int StreamHeaderSize = 12;
    public const int StreamFooterSize = 12;

    public static ReadOnlySpan<byte> HeaderMagic => [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00];

    /// <summary>Size in bytes of each check type's value (types 0..15).</summary>
    public static int CheckSize(int checkType) => checkType switch
    {
        0 => 0,
        <= 3 => 4,
        <= 6 => 8,
        <= 9 => 16,
        <= 12 => 32,
        _ => 64,
    };

    /// <summary>Parses a stream footer; returns the index size in bytes and the stream flags.</summary>
    public static (long IndexSize, ushort Flags) ParseFooter(ReadOnlySpan<byte> b, long fileOffset)
    {
        if (b.Length < StreamFooterSize || b[10] != (byte)'Y' || b[11] != (byte)'Z')
        {
            throw new ImageFormatException($"xz: no stream footer (magic \"YZ\") at offset {fileOffset}");
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(b) != XzChecksums.Crc32(b.Slice(4, 6)))
        {
            throw new ImageFormatException($"xz: stream footer at offset {fileOffset}: CRC32 mismatch");
        }

        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(b[8..]);
        CheckFlags(flags, "stream footer", fileOffset);
        long backward = BinaryPrimitives.ReadUInt32LittleEndian(b[4..]);
        return ((backward + 1) * 4, flags);
    }

    /// <summary>Parses a stream header; returns its flags.</summary>
    public static ushort ParseHeader(ReadOnlySpan<byte> b, long fileOffset)
    {
        if (b.Length < StreamHeaderSize || !b[..6].SequenceEqual(HeaderMagic))
        {
            throw new ImageFormatException($"xz: no stream header (magic FD 37 7A 58 5A 00) at offset {fileOffset}");
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(b[8..]) != XzChecksums.Crc32(b.Slice(6, 2)))
        {
            throw new ImageFormatException($"xz: stream header at offset {fileOffset}: CRC32 mismatch");
        }

        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(b[6..]);
        CheckFlags(flags, "stream header", fileOffset);
        return flags;
    }

    private static void CheckFlags(ushort flags, string what, long fileOffset)
    {
        if ((flags & 0xF0FF) != 0)
        {
            throw new ImageFormatException($"xz: {what} at offset {fileOffset}: reserved flag bits are set (0x{flags:x4})");
        }
    }

    /// <summary>The check type (0..15) of stream flags.</summary>
    public static int CheckTypeOf(ushort flags) => (flags >> 8) & 0x0F;

    /// <summary>Parses an index: (unpadded, uncompressed) size pairs, in block order.</summary>
    public static List<(long Unpadded, long Uncompressed)> ParseIndex(ReadOnlySpan<byte> b, long fileOffset)
    {
        if (b.Length < 8 || b.Length % 4 != 0 || b[0] != 0)
        {
            throw new ImageFormatException($"xz: no index (indicator 0x00) at offset {fileOffset}");
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(b[^4..]) != XzChecksums.Crc32(b[..^4]))
        {
            throw new ImageFormatException($"xz: index at offset {fileOffset}: CRC32 mismatch");
        }

        int pos = 1;
        var body = b[..^4];
        ulong count = ReadVli(body, ref pos, "index record count", fileOffset);
        // Each record takes at least two bytes: a larger count cannot be honest.
        if (count > (ulong)body.Length / 2)
        {
            throw new ImageFormatException($"xz: index at offset {fileOffset}: {count} records cannot fit in {body.Length} bytes");
        }

        var records = new List<(long, long)>((int)count);
        for (ulong i = 0; i < count; i++)
        {
            ulong unpadded = ReadVli(body, ref pos, "index record", fileOffset);
            ulong uncompressed = ReadVli(body, ref pos, "index record", fileOffset);
            if (unpadded < 5 || unpadded > long.MaxValue / 2 || uncompressed > long.MaxValue / 2)
            {
                throw new ImageFormatException($"xz: index at offset {fileOffset}: record {i} has sizes {unpadded}/{uncompressed} out of range");
            }

            records.Add(((long)unpadded, (long)uncompressed));
        }

        for (; pos < body.Length; pos++)
        {
            if (body[pos] != 0 || body.Length - pos >= 4)
            {
                throw new ImageFormatException($"xz: index at offset {fileOffset}: {body.Length - pos} bytes after the records are not 0-3 bytes of zero padding");
            }
        }

        return records;
    }

    /// <summary>A variable-length integer: 7 bits a byte, least significant first, at most 9 bytes, no trailing zero byte.</summary>
    public static ulong ReadVli(ReadOnlySpan<byte> b, ref int pos, string what, long fileOffset)
    {
        ulong value = 0;
        for (int i = 0; i < 9; i++)
        {
            if (pos >= b.Length)
            {
                throw new ImageFormatException($"xz: {what} at offset {fileOffset}: integer runs past the end of the structure");
            }

            byte c = b[pos++];
            value |= (ulong)(c & 0x7F) << (i * 7);
            if ((c & 0x80) == 0)
            {
                if (c == 0 && i > 0)
                {
                    throw new ImageFormatException($"xz: {what} at offset {fileOffset}: integer is not minimally encoded");
                }

                return value;
            }
        }

        throw new ImageFormatException($"xz: {what} at offset {fileOffset}: integer longer than 9 bytes");
    }
}
