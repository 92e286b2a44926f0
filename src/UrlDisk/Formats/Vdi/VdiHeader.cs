using System.Buffers.Binary;

namespace UrlDisk.Formats.Vdi;

/// <summary>The 512-byte header of a VirtualBox disk image (version 1.1, little-endian).</summary>
internal readonly record struct VdiHeader
{
    public const uint Signature = 0xBEDA107F;
    public const uint Version11 = 0x00010001;
    public const int Size = 512;
    public const uint TypeDynamic = 1;
    public const uint TypeStatic = 2;
    /// <summary>The most blocks allowed: the block map (4 bytes each, read whole) stays at most 128 MiB (32 TiB in 1 MiB blocks).</summary>
    public const uint MaxBlocks = 32u << 20;

    /// <summary>Block map values at or above this are unallocated (0xFFFFFFFF never written, 0xFFFFFFFE discarded).</summary>
    public const uint FirstUnallocated = 0xFFFFFFFE;

    public uint ImageType { get; init; }
    public uint OffsetBmap { get; init; }
    public uint OffsetData { get; init; }
    public uint SectorSize { get; init; }
    public ulong DiskSize { get; init; }
    public uint BlockSize { get; init; }
    public uint BlockExtra { get; init; }
    public uint BlocksInImage { get; init; }
    public uint BlocksAllocated { get; init; }
    public Guid ImageUuid { get; init; }
    public Guid LinkUuid { get; init; }
    public Guid ParentUuid { get; init; }

    public bool IsStatic => ImageType == TypeStatic;

    /// <summary>True when <paramref name="head"/> has the VDI signature at offset 64.</summary>
    public static bool HasSignature(ReadOnlySpan<byte> head) => head.Length >= 68 && BinaryPrimitives.ReadUInt32LittleEndian(head[64..]) == Signature;

    public static bool TryRead(ReadOnlySpan<byte> b, out VdiHeader header, out string? error)
    {
        header = default;
        if (b.Length < Size)
        {
            error = $"header: {b.Length} bytes, need {Size}";
            return false;
        }

        if (!HasSignature(b))
        {
            error = $"header (offset 64): signature 0x{BinaryPrimitives.ReadUInt32LittleEndian(b[64..]):x8} is not 0x{Signature:x8}";
            return false;
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(b[68..]);
        if (version != Version11)
        {
            error = $"header (offset 68): version {version >> 16}.{version & 0xFFFF} is not supported; allowed: 1.1";
            return false;
        }

        header = new VdiHeader
        {
            ImageType = BinaryPrimitives.ReadUInt32LittleEndian(b[76..]),
            OffsetBmap = BinaryPrimitives.ReadUInt32LittleEndian(b[340..]),
            OffsetData = BinaryPrimitives.ReadUInt32LittleEndian(b[344..]),
            SectorSize = BinaryPrimitives.ReadUInt32LittleEndian(b[360..]),
            DiskSize = BinaryPrimitives.ReadUInt64LittleEndian(b[368..]),
            BlockSize = BinaryPrimitives.ReadUInt32LittleEndian(b[376..]),
            BlockExtra = BinaryPrimitives.ReadUInt32LittleEndian(b[380..]),
            BlocksInImage = BinaryPrimitives.ReadUInt32LittleEndian(b[384..]),
            BlocksAllocated = BinaryPrimitives.ReadUInt32LittleEndian(b[388..]),
            ImageUuid = new Guid(b.Slice(392, 16)),
            LinkUuid = new Guid(b.Slice(424, 16)),
            ParentUuid = new Guid(b.Slice(440, 16)),
        };
        error = header.Check();
        return error is null;
    }

    private string? Check()
    {
        if (ImageType is not (TypeDynamic or TypeStatic))
        {
            return $"header (offset 76): image type {ImageType} is not supported; allowed: 1 (dynamic), 2 (static)";
        }

        if (SectorSize != 512)
        {
            return $"header (offset 360): sector size {SectorSize} is not supported; allowed: 512";
        }

        if (BlockSize < 512 || (BlockSize & (BlockSize - 1)) != 0 || BlockSize > 256u << 20)
        {
            return $"header (offset 376): block size {BlockSize} is not allowed; allowed: a power of 2 from 512 to 256 MiB";
        }

        if (BlockExtra != 0)
        {
            return $"header (offset 380): {BlockExtra} bytes of extra data per block are not supported; allowed: 0";
        }

        if (BlocksInImage > MaxBlocks)
        {
            return $"header (offset 384): {BlocksInImage} blocks is more than the {MaxBlocks} allowed";
        }

        if (DiskSize > (ulong)BlocksInImage * BlockSize)
        {
            return $"header (offset 368): disk size {DiskSize} is more than the {BlocksInImage} blocks of {BlockSize} bytes hold";
        }

        if (OffsetBmap < Size || OffsetData < Size || (OffsetData & 511) != 0)
        {
            return $"header (offset 340): block map offset {OffsetBmap} and data offset {OffsetData} must be past the header, the data offset 512-aligned";
        }

        if (LinkUuid != Guid.Empty || ParentUuid != Guid.Empty)
        {
            return "header (offset 424): differencing images (a link or parent UUID) are not supported";
        }

        return null;
    }
}
