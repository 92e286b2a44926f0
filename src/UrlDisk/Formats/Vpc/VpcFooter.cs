using System.Buffers.Binary;
using System.Text;

namespace UrlDisk.Formats.Vpc;

/// <summary>VHD disk types (footer field at offset 60).</summary>
internal enum VpcDiskType
{
    Fixed = 2,
    Dynamic = 3,
    Differencing = 4,
}

/// <summary>
/// The 512-byte VHD footer (big-endian): at the end of every VHD, and copied at offset 0 of dynamic and
/// differencing ones. Written from Microsoft's "Virtual Hard Disk Image Format Specification".
/// </summary>
internal sealed record VpcFooter
{
    public const int Size = 512;
    public const ulong NoDataOffset = ulong.MaxValue;

    /// <summary>CHS 65535/16/255: the geometry that says "use currentSize" (qemu's force_size writes it).</summary>
    public const long MaxGeometrySectors = 65535L * 16 * 255;

    public static ReadOnlySpan<byte> Cookie => "conectix"u8;

    public uint Features { get; init; } = 2;
    public uint Version { get; init; } = 0x00010000;
    public ulong DataOffset { get; init; } = NoDataOffset;
    public uint Timestamp { get; init; }
    public string CreatorApp { get; init; } = "qemu";
    public uint CreatorVersion { get; init; } = 0x00050003;
    public string CreatorOs { get; init; } = "Wi2k";
    public ulong OriginalSize { get; init; }
    public ulong CurrentSize { get; init; }
    public ushort Cylinders { get; init; }
    public byte Heads { get; init; }
    public byte SectorsPerTrack { get; init; }
    public VpcDiskType DiskType { get; init; }
    public Guid UniqueId { get; init; }
    public byte SavedState { get; init; }

    public long GeometrySectors => (long)Cylinders * Heads * SectorsPerTrack;

    /// <summary>True when the first 8 bytes are the footer cookie.</summary>
    public static bool HasCookie(ReadOnlySpan<byte> bytes) => bytes.Length >= 8 && bytes[..8].SequenceEqual(Cookie);

    /// <summary>One's complement of the byte sum, with the checksum field counted as zeros.</summary>
    public static uint Checksum(ReadOnlySpan<byte> footer)
    {
        uint sum = 0;
        for (int i = 0; i < Size; i++)
        {
            if (i is < 64 or >= 68)
            {
                sum += footer[i];
            }
        }

        return ~sum;
    }

    /// <summary>Parses a footer read at <paramref name="fileOffset"/> (for messages).</summary>
    public static VpcFooter Parse(ReadOnlySpan<byte> b, long fileOffset)
    {
        if (b.Length < Size || !HasCookie(b))
        {
            throw new ImageFormatException($"vpc: no VHD footer (cookie \"conectix\") at offset {fileOffset}");
        }

        uint stored = BinaryPrimitives.ReadUInt32BigEndian(b[64..]);
        uint computed = Checksum(b);
        if (stored != computed)
        {
            throw new ImageFormatException($"vpc: incorrect footer checksum at offset {fileOffset} (stored 0x{stored:x8}, computed 0x{computed:x8})");
        }

        uint type = BinaryPrimitives.ReadUInt32BigEndian(b[60..]);
        if (type is not (2 or 3 or 4))
        {
            throw new ImageFormatException($"vpc: footer at offset {fileOffset}: disk type {type} is not supported; allowed: 2 (fixed), 3 (dynamic), 4 (differencing)");
        }

        return new VpcFooter
        {
            Features = BinaryPrimitives.ReadUInt32BigEndian(b[8..]),
            Version = BinaryPrimitives.ReadUInt32BigEndian(b[12..]),
            DataOffset = BinaryPrimitives.ReadUInt64BigEndian(b[16..]),
            Timestamp = BinaryPrimitives.ReadUInt32BigEndian(b[24..]),
            CreatorApp = Encoding.Latin1.GetString(b.Slice(28, 4)),
            CreatorVersion = BinaryPrimitives.ReadUInt32BigEndian(b[32..]),
            CreatorOs = Encoding.Latin1.GetString(b.Slice(36, 4)),
            OriginalSize = BinaryPrimitives.ReadUInt64BigEndian(b[40..]),
            CurrentSize = BinaryPrimitives.ReadUInt64BigEndian(b[48..]),
            Cylinders = BinaryPrimitives.ReadUInt16BigEndian(b[56..]),
            Heads = b[58],
            SectorsPerTrack = b[59],
            DiskType = (VpcDiskType)type,
            UniqueId = new Guid(b.Slice(68, 16), bigEndian: true),
            SavedState = b[84],
        };
    }

    public void Write(Span<byte> b)
    {
        b[..Size].Clear();
        Cookie.CopyTo(b);
        BinaryPrimitives.WriteUInt32BigEndian(b[8..], Features);
        BinaryPrimitives.WriteUInt32BigEndian(b[12..], Version);
        BinaryPrimitives.WriteUInt64BigEndian(b[16..], DataOffset);
        BinaryPrimitives.WriteUInt32BigEndian(b[24..], Timestamp);
        Encoding.Latin1.GetBytes(CreatorApp.AsSpan(0, 4), b.Slice(28, 4));
        BinaryPrimitives.WriteUInt32BigEndian(b[32..], CreatorVersion);
        Encoding.Latin1.GetBytes(CreatorOs.AsSpan(0, 4), b.Slice(36, 4));
        BinaryPrimitives.WriteUInt64BigEndian(b[40..], OriginalSize);
        BinaryPrimitives.WriteUInt64BigEndian(b[48..], CurrentSize);
        BinaryPrimitives.WriteUInt16BigEndian(b[56..], Cylinders);
        b[58] = Heads;
        b[59] = SectorsPerTrack;
        BinaryPrimitives.WriteUInt32BigEndian(b[60..], (uint)DiskType);
        UniqueId.TryWriteBytes(b.Slice(68, 16), bigEndian: true, out _);
        b[84] = SavedState;
        BinaryPrimitives.WriteUInt32BigEndian(b[64..], Checksum(b));
    }

    /// <summary>Seconds since 2000-01-01 UTC, the VHD epoch.</summary>
    public static uint TimestampOf(DateTimeOffset when)
        => (uint)Math.Clamp((when - new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero)).TotalSeconds, 0, uint.MaxValue);
}
