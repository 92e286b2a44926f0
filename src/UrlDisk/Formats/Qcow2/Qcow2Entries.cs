namespace UrlDisk.Formats.Qcow2;

/// <summary>Bit layout of L1 and standard L2 entries and of refcount-table entries.</summary>
public static class Qcow2Entries
{
    public const ulong Copied = 1UL << 63;
    public const ulong Compressed = 1UL << 62;
    public const ulong ZeroFlag = 1UL;

    /// <summary>Bits 9–55: a cluster-aligned host offset.</summary>
    public const ulong OffsetMask = 0x00FF_FFFF_FFFF_FE00UL;

    public const ulong L1ReservedMask = 0x7F00_0000_0000_01FFUL;
    public const ulong L2StandardReservedMask = 0x3F00_0000_0000_01FEUL;
    public const ulong RefcountTableReservedMask = 0x1FFUL;
}

/// <summary>What an L2 entry (with its extended bitmap, if any) says about a cluster.</summary>
public enum ClusterKind
{
    /// <summary>Not allocated here: read the backing file, or zeros.</summary>
    Unallocated,

    /// <summary>Reads as zeros (zero flag), possibly with a preallocated host cluster.</summary>
    Zero,

    /// <summary>Data at a host offset.</summary>
    Normal,

    /// <summary>Compressed data.</summary>
    Compressed,
}

/// <summary>An L1 entry: the offset of an L2 table and the COPIED bit.</summary>
public readonly record struct L1Entry(ulong Raw)
{
    public long L2Offset => (long)(Raw & Qcow2Entries.OffsetMask);
    public bool IsCopied => (Raw & Qcow2Entries.Copied) != 0;
    public bool HasReservedBits => (Raw & Qcow2Entries.L1ReservedMask) != 0;

    public static L1Entry Create(long l2Offset, bool copied) => new((ulong)l2Offset | (copied ? Qcow2Entries.Copied : 0));
}

/// <summary>
/// An L2 entry: the 64-bit descriptor plus, with extended L2, the subcluster bitmap
/// (bits 0–31 allocated, bits 32–63 reads-as-zero).
/// </summary>
public readonly record struct L2Entry(ulong Raw, ulong Bitmap = 0)
{
    public bool IsCompressed => (Raw & Qcow2Entries.Compressed) != 0;
    public bool IsCopied => (Raw & Qcow2Entries.Copied) != 0;
    public bool HasZeroFlag => !IsCompressed && (Raw & Qcow2Entries.ZeroFlag) != 0;

    /// <summary>Host offset of a standard (not compressed) cluster; 0 when unallocated.</summary>
    public long HostOffset => IsCompressed ? 0 : (long)(Raw & Qcow2Entries.OffsetMask);

    public uint AllocatedSubclusters => (uint)Bitmap;
    public uint ZeroSubclusters => (uint)(Bitmap >> 32);

    public bool HasReservedBits => !IsCompressed && (Raw & Qcow2Entries.L2StandardReservedMask) != 0;

    /// <summary>The kind of a standard-L2 cluster.</summary>
    public ClusterKind Kind
    {
        get
        {
            if (IsCompressed)
            {
                return ClusterKind.Compressed;
            }

            if (HasZeroFlag)
            {
                return ClusterKind.Zero;
            }

            return HostOffset == 0 ? ClusterKind.Unallocated : ClusterKind.Normal;
        }
    }

    /// <summary>The kind of subcluster <paramref name="index"/> (0–31) of an extended-L2 cluster.</summary>
    public ClusterKind SubclusterKind(int index)
    {
        if (IsCompressed)
        {
            return ClusterKind.Compressed;
        }

        uint bit = 1u << index;
        if ((AllocatedSubclusters & bit) != 0)
        {
            return ClusterKind.Normal;
        }

        return (ZeroSubclusters & bit) != 0 ? ClusterKind.Zero : ClusterKind.Unallocated;
    }

    public static L2Entry Standard(long hostOffset, bool copied, bool zero = false)
        => new((ulong)hostOffset | (copied ? Qcow2Entries.Copied : 0) | (zero ? Qcow2Entries.ZeroFlag : 0));
}
