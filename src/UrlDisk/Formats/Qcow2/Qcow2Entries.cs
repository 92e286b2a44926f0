namespace UrlDisk.Formats.Qcow2;

/// <summary>Bit layout of L1 and standard L2 entries and of refcount-table entries.</summary>
internal static class Qcow2Entries
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
