namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// The descriptor of a compressed cluster (L2 bits 0–61): a byte offset in the low
/// <c>62 − (cluster_bits − 8)</c> bits and the number of additional 512-byte sectors above it.
/// </summary>
internal readonly record struct CompressedDescriptor(long HostOffset, int SectorCount)
{
    public static int OffsetBits(int clusterBits) => 62 - (clusterBits - 8);

    /// <summary>Bytes that may hold the compressed data, from <see cref="HostOffset"/> to the end of its last sector.</summary>
    public int MaxCompressedLength => (SectorCount * 512) - (int)(HostOffset & 511);

    /// <summary>First and last host cluster the data touches.</summary>
    public (long First, long Last) HostClusters(int clusterBits)
        => (HostOffset >> clusterBits, (HostOffset + MaxCompressedLength - 1) >> clusterBits);

    public static CompressedDescriptor Decode(ulong l2Raw, int clusterBits)
    {
        int x = OffsetBits(clusterBits);
        ulong descriptor = l2Raw & ((1UL << 62) - 1);
        long offset = (long)(descriptor & ((1UL << x) - 1));
        int sectors = (int)(descriptor >> x) + 1;
        return new CompressedDescriptor(offset, sectors);
    }

    /// <summary>The L2 entry for compressed data of <paramref name="length"/> bytes at <paramref name="hostOffset"/>.</summary>
    public static ulong Encode(long hostOffset, int length, int clusterBits)
    {
        int x = OffsetBits(clusterBits);
        long additional = ((hostOffset + length - 1) >> 9) - (hostOffset >> 9);
        return Qcow2Entries.Compressed | ((ulong)additional << x) | (ulong)hostOffset;
    }
}
