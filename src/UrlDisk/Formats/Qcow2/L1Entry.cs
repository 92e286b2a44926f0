namespace UrlDisk.Formats.Qcow2;

/// <summary>An L1 entry: the offset of an L2 table and the COPIED bit.</summary>
internal readonly record struct L1Entry(ulong Raw)
{
    public long L2Offset => (long)(Raw & Qcow2Entries.OffsetMask);
    public bool IsCopied => (Raw & Qcow2Entries.Copied) != 0;
    public bool HasReservedBits => (Raw & Qcow2Entries.L1ReservedMask) != 0;

    public static L1Entry Create(long l2Offset, bool copied) => new((ulong)l2Offset | (copied ? Qcow2Entries.Copied : 0));
}
