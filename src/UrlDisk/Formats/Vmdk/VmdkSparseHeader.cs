using System.Buffers.Binary;

namespace UrlDisk.Formats.Vmdk;

/// <summary>
/// The 512-byte header of a hosted sparse extent ("KDMV", little-endian), as in VMware's Virtual Disk Format 5.0.
/// Also the footer of a streamOptimized file. Sizes and offsets are in sectors.
/// </summary>
internal readonly record struct VmdkSparseHeader
{
    public const uint Magic = 0x564D444B; // "KDMV" read little-endian
    public const int Size = 512;
    public const ulong GdAtEnd = ulong.MaxValue;
    public const uint FlagNewlineTest = 1;
    public const uint FlagRedundantGd = 1 << 1;
    public const uint FlagZeroedGrainGte = 1 << 2;
    public const uint FlagCompressed = 1 << 16;
    public const uint FlagMarkers = 1 << 17;
    public const ushort CompressDeflate = 1;

    /// <summary>Grains larger than this (in sectors, 32 MiB) are refused: a grain is decompressed into memory whole.</summary>
    public const ulong MaxGrainSectors = 1 << 16;

    public uint Version { get; init; }
    public uint Flags { get; init; }
    public ulong Capacity { get; init; }
    public ulong GrainSize { get; init; }
    public ulong DescriptorOffset { get; init; }
    public ulong DescriptorSize { get; init; }
    public uint NumGtesPerGt { get; init; }
    public ulong RgdOffset { get; init; }
    public ulong GdOffset { get; init; }
    public ulong OverHead { get; init; }
    public bool UncleanShutdown { get; init; }
    public ushort CompressAlgorithm { get; init; }

    public bool IsCompressed => (Flags & FlagCompressed) != 0;
    public bool HasMarkers => (Flags & FlagMarkers) != 0;
    public bool HasZeroedGrainGte => (Flags & FlagZeroedGrainGte) != 0;
    public long GrainBytes => (long)GrainSize * 512;
    public long CapacityBytes => (long)Capacity * 512;

    /// <summary>Grains in the extent (the last may be partial).</summary>
    public long GrainCount => (long)((Capacity + GrainSize - 1) / GrainSize);

    /// <summary>Entries of the grain directory: one per grain table.</summary>
    public long GdEntries => (GrainCount + NumGtesPerGt - 1) / NumGtesPerGt;

    /// <summary>True when <paramref name="head"/> starts with the sparse magic.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> head) => head.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(head) == Magic;

    /// <summary>Parses and checks a header; <paramref name="error"/> names the field and what is allowed.</summary>
    public static bool TryRead(ReadOnlySpan<byte> b, out VmdkSparseHeader header, out string? error)
    {
        header = default;
        if (b.Length < Size)
        {
            error = $"sparse header: {b.Length} bytes, need {Size}";
            return false;
        }

        if (!HasMagic(b))
        {
            error = $"sparse header: magic 0x{BinaryPrimitives.ReadUInt32LittleEndian(b):x8} is not KDMV";
            return false;
        }

        header = new VmdkSparseHeader
        {
            Version = BinaryPrimitives.ReadUInt32LittleEndian(b[4..]),
            Flags = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]),
            Capacity = BinaryPrimitives.ReadUInt64LittleEndian(b[12..]),
            GrainSize = BinaryPrimitives.ReadUInt64LittleEndian(b[20..]),
            DescriptorOffset = BinaryPrimitives.ReadUInt64LittleEndian(b[28..]),
            DescriptorSize = BinaryPrimitives.ReadUInt64LittleEndian(b[36..]),
            NumGtesPerGt = BinaryPrimitives.ReadUInt32LittleEndian(b[44..]),
            RgdOffset = BinaryPrimitives.ReadUInt64LittleEndian(b[48..]),
            GdOffset = BinaryPrimitives.ReadUInt64LittleEndian(b[56..]),
            OverHead = BinaryPrimitives.ReadUInt64LittleEndian(b[64..]),
            UncleanShutdown = b[72] != 0,
            CompressAlgorithm = BinaryPrimitives.ReadUInt16LittleEndian(b[77..]),
        };
        error = header.Check();
        return error is null;
    }

    private string? Check()
    {
        if (Version is < 1 or > 3)
        {
            return $"sparse header (offset 4): version {Version} is not supported; allowed: 1, 2, 3";
        }

        uint unknown = Flags & 0xFFFF0000 & ~(FlagCompressed | FlagMarkers);
        if (unknown != 0)
        {
            return $"sparse header (offset 8): flags 0x{Flags:x8} have unknown incompatible bits 0x{unknown:x8}";
        }

        if (GrainSize == 0 || (GrainSize & (GrainSize - 1)) != 0 || GrainSize > MaxGrainSectors)
        {
            return $"sparse header (offset 20): grain size {GrainSize} sectors is not allowed; allowed: a power of 2 up to {MaxGrainSectors}";
        }

        if (NumGtesPerGt is 0 or > 512)
        {
            return $"sparse header (offset 44): {NumGtesPerGt} entries per grain table is not allowed; allowed: 1 to 512";
        }

        if (Capacity > (ulong)(long.MaxValue / 512) - GrainSize)
        {
            return $"sparse header (offset 12): capacity {Capacity} sectors is too large";
        }

        if (IsCompressed && CompressAlgorithm != CompressDeflate)
        {
            return $"sparse header (offset 77): compression algorithm {CompressAlgorithm} is not supported; allowed: 1 (deflate)";
        }

        if (IsCompressed && !HasMarkers)
        {
            return "sparse header (offset 8): compressed grains without grain markers are not supported";
        }

        return null;
    }

    /// <summary>The header as 512 bytes (the newline-test bytes included).</summary>
    public void Write(Span<byte> b)
    {
        b[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(b, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(b[12..], Capacity);
        BinaryPrimitives.WriteUInt64LittleEndian(b[20..], GrainSize);
        BinaryPrimitives.WriteUInt64LittleEndian(b[28..], DescriptorOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(b[36..], DescriptorSize);
        BinaryPrimitives.WriteUInt32LittleEndian(b[44..], NumGtesPerGt);
        BinaryPrimitives.WriteUInt64LittleEndian(b[48..], RgdOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(b[56..], GdOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(b[64..], OverHead);
        b[72] = UncleanShutdown ? (byte)1 : (byte)0;
        b[73] = (byte)'\n';
        b[74] = (byte)' ';
        b[75] = (byte)'\r';
        b[76] = (byte)'\n';
        BinaryPrimitives.WriteUInt16LittleEndian(b[77..], CompressAlgorithm);
    }
}
