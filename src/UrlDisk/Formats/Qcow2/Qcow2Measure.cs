namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// The file size a qcow2 image needs, by qemu-img measure's rule: the metadata a fully allocated image of the
/// virtual size would have (header, L2 and L1 tables rounded to whole tables, refcount blocks and table covering
/// all of it) plus the data clusters. Pure arithmetic.
/// </summary>
internal static class Qcow2Measure
{
    /// <summary>The file size once every guest cluster is written (the virtual size rounded up to whole clusters).</summary>
    public static long FullyAllocated(long virtualSize, long clusterSize, int refcountBits, bool extendedL2)
    {
        long entrySize = extendedL2 ? 16 : 8;
        long data = RoundUp(virtualSize, clusterSize);
        long meta = clusterSize; // header
        long l2Entries = RoundUp(data / clusterSize, clusterSize / entrySize);
        meta += l2Entries * entrySize;
        long l1Entries = RoundUp(l2Entries * entrySize / clusterSize, clusterSize / 8);
        meta += l1Entries * 8;
        meta += RefcountMetadataSize((meta + data) / clusterSize, clusterSize, refcountBits);
        return meta + data;
    }

    /// <summary>Bytes of refcount blocks and refcount table needed to count <paramref name="clusters"/> clusters and themselves.</summary>
    public static long RefcountMetadataSize(long clusters, long clusterSize, int refcountBits)
    {
        long perBlock = clusterSize * 8 / refcountBits;
        long perTableCluster = clusterSize / 8;
        long blocks = 0, table = 0, n = 0, last;
        do
        {
            last = n;
            blocks = DivRoundUp(clusters + table + blocks, perBlock);
            table = DivRoundUp(blocks, perTableCluster);
            n = clusters + blocks + table;
        }
        while (n != last);

        return (blocks + table) * clusterSize;
    }

    public static long RoundUp(long value, long unit) => DivRoundUp(value, unit) * unit;

    private static long DivRoundUp(long value, long unit) => (value + unit - 1) / unit;
}
