namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// An L2 entry: the 64-bit descriptor plus, with extended L2, the subcluster bitmap
/// (bits 0–31 allocated, bits 32–63 reads-as-zero).
/// </summary>
internal readonly record struct L2Entry(ulong Raw, ulong Bitmap = 0)
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
