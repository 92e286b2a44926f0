using System.Buffers.Binary;
using System.Numerics;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Where a preallocated qcow2 image (<c>-o preallocation=metadata|falloc|full</c>) keeps its clusters, placed as
/// qemu-img 7.2 places them so that <c>qemu-img map</c> gives the same offsets: every guest cluster is mapped to a
/// host cluster. <c>metadata</c> allocates one L2 table then its data clusters, table after table (refcount blocks
/// appear inline where the file first needs them); <c>falloc</c>/<c>full</c> first build refcount structures big
/// enough for the whole file, then one contiguous data area, then the L2 tables (the first in the cluster the old
/// refcount table left free). Pure: only offsets and the content of each metadata cluster; the caller writes them.
/// </summary>
internal sealed class Qcow2PreallocatedLayout
{
    /// <summary>One contiguous piece of the mapping: guest clusters [Guest, Guest+Count) at host clusters [Host, Host+Count).</summary>
    internal readonly record struct DataRun(long Guest, long Host, long Count);

    private readonly UsedClusters _used;
    private readonly long[] _l2Tables; // host cluster of each L2 table
    private readonly List<DataRun> _runs;
    private readonly long[] _refcountBlocks; // host cluster of each refcount block (0: none)

    private Qcow2PreallocatedLayout(int clusterBits, int l2Bits, bool extendedL2, int refcountOrder, long dataClusters, long l1Offset, long l1Entries, long refcountTableOffset, int refcountTableClusters, long[] refcountBlocks, long[] l2Tables, List<DataRun> runs, UsedClusters used)
    {
        ClusterBits = clusterBits;
        L2Bits = l2Bits;
        ExtendedL2 = extendedL2;
        RefcountOrder = refcountOrder;
        DataClusters = dataClusters;
        L1Offset = l1Offset;
        L1Entries = l1Entries;
        RefcountTableOffset = refcountTableOffset;
        RefcountTableClusters = refcountTableClusters;
        _refcountBlocks = refcountBlocks;
        _l2Tables = l2Tables;
        _runs = runs;
        _used = used;
    }

    public int ClusterBits { get; }

    public long ClusterSize => 1L << ClusterBits;

    /// <summary>log2 of the entries in one L2 table.</summary>
    public int L2Bits { get; }

    public bool ExtendedL2 { get; }

    public int RefcountOrder { get; }

    /// <summary>Guest clusters (all mapped).</summary>
    public long DataClusters { get; }

    public long L1Offset { get; }

    public long L1Entries { get; }

    public int L1Clusters => (int)Math.Max(1, ((L1Entries * 8) + ClusterSize - 1) >> ClusterBits);

    public long RefcountTableOffset { get; }

    public int RefcountTableClusters { get; }

    /// <summary>
    /// Length of the file: up to the end of its last cluster, except that <c>metadata</c> with extended L2 stops
    /// after the last subcluster of the virtual size, as qemu-img (it writes nothing past it).
    /// </summary>
    public long FileLength { get; private init; }

    /// <summary>
    /// Where <c>metadata</c> writes zeros up to the end of the last data cluster when the size is not a multiple
    /// of the cluster size (qemu's copy-on-write of the cluster tail), or null.
    /// </summary>
    public long? TailZeros { get; private init; }

    /// <summary>Host offsets of the refcount blocks (one per refcount-table entry in use).</summary>
    public IEnumerable<long> RefcountBlockOffsets => _refcountBlocks.Where(b => b != 0).Select(b => b << ClusterBits);

    /// <summary>Host offsets of the L2 tables, in guest order.</summary>
    public IEnumerable<long> L2TableOffsets => _l2Tables.Select(t => t << ClusterBits);

    /// <summary>The mapping, in guest order.</summary>
    public IReadOnlyList<DataRun> Runs => _runs;

    /// <summary>Whether host cluster <paramref name="cluster"/> is in use (refcount 1).</summary>
    public bool IsUsed(long cluster) => _used.Get(cluster);

    /// <summary>Plans the image; <paramref name="mode"/> is metadata, falloc or full, <paramref name="size"/> &gt; 0.</summary>
    public static Qcow2PreallocatedLayout Plan(long size, Qcow2CreateOptions o, string mode)
    {
        try
        {
            return Plan(size, o, mode, refcountTableClusters: 1);
        }
        catch (RefcountTableFullException)
        {
            // qemu grows its refcount table while allocating; rather than copy that dance, start with one big enough
            // (a valid image; the offsets then differ from qemu-img's).
            int clusterBits = BitOperations.Log2((uint)o.ClusterSize);
            long perBlock = (8L << clusterBits) >> BitOperations.Log2((uint)o.RefcountBits);
            long guess = Qcow2Measure.RoundUp(size, o.ClusterSize) >> clusterBits;
            long metadata = (guess >> (clusterBits - 3)) + 64;
            long blocks = ((guess + metadata) * 2 / perBlock) + 2;
            int tableClusters = (int)(((blocks * 8) + o.ClusterSize - 1) >> clusterBits);
            return Plan(size, o, mode, tableClusters);
        }
    }

    private static Qcow2PreallocatedLayout Plan(long size, Qcow2CreateOptions o, string mode, int refcountTableClusters)
    {
        int clusterBits = BitOperations.Log2((uint)o.ClusterSize);
        int l2Bits = clusterBits - (o.ExtendedL2 ? 4 : 3);
        int order = BitOperations.Log2((uint)o.RefcountBits);
        long dataClusters = (size + (1L << clusterBits) - 1) >> clusterBits;
        long l1Entries = (dataClusters + (1L << l2Bits) - 1) >> l2Bits;
        var a = new Allocator(clusterBits, order, refcountTableClusters);
        long l1 = a.Alloc(Math.Max(1, ((l1Entries * 8) + (1L << clusterBits) - 1) >> clusterBits));
        var l2Tables = new long[l1Entries];
        var runs = new List<DataRun>();
        long l2Entries = 1L << l2Bits;
        if (mode == "metadata")
        {
            // qemu's preallocate_co: per L2 table, the table first, then its data clusters (at most INT_MAX bytes a time).
            long chunk = int.MaxValue >> clusterBits;
            for (long g = 0; g < dataClusters;)
            {
                long t = g >> l2Bits;
                if (l2Tables[t] == 0)
                {
                    l2Tables[t] = a.Alloc(1);
                }

                long n = Math.Min(Math.Min(dataClusters - g, l2Entries - (g & (l2Entries - 1))), chunk);
                long host = a.Alloc(n);
                runs.Add(new DataRun(g, host, n));
                g += n;
            }
        }
        else
        {
            // qemu's falloc/full growth: refcount structures for the whole file first (a new table after the old end),
            // then the data area in one piece, then the L2 tables wherever the allocator finds room.
            long start = a.End;
            long newTables = (dataClusters >> l2Bits) + ((dataClusters & (l2Entries - 1)) != 0 ? 1 : 0) + 1;
            long dataStart = a.BuildRefcountArea(start, dataClusters + newTables);
            a.AllocAt(dataStart, dataClusters);
            runs.Add(new DataRun(0, dataStart, dataClusters));
            for (long t = 0; t < l1Entries; t++)
            {
                l2Tables[t] = a.Alloc(1);
            }
        }

        long fileLength = a.End << clusterBits;
        long? tailZeros = null;
        long tail = size & ((1L << clusterBits) - 1);
        if (mode == "metadata" && tail != 0)
        {
            long lastHost = (runs[^1].Host + runs[^1].Count - 1) << clusterBits;
            if (o.ExtendedL2)
            {
                // Allocation stops at the subcluster holding the last byte; a refcount block placed after it still counts.
                long subcluster = 1L << (clusterBits - 5);
                long end = lastHost + ((tail + subcluster - 1) & ~(subcluster - 1));
                if (a.End - 1 == lastHost >> clusterBits)
                {
                    fileLength = end;
                }
            }
            else
            {
                tailZeros = lastHost + tail;
            }
        }

        return new Qcow2PreallocatedLayout(clusterBits, l2Bits, o.ExtendedL2, order, dataClusters, l1 << clusterBits, l1Entries, a.TableOffset << clusterBits, a.TableClusters, a.Blocks, l2Tables, runs, a.Used)
        {
            FileLength = fileLength,
            TailZeros = tailZeros,
        };
    }

    /// <summary>Cluster <paramref name="index"/> of the L1 table (big-endian entries, COPIED set).</summary>
    public void WriteL1Cluster(int index, Span<byte> cluster)
    {
        cluster.Clear();
        long first = (long)index << (ClusterBits - 3);
        for (long e = first; e < Math.Min(L1Entries, first + (ClusterSize / 8)); e++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(cluster[(int)((e - first) * 8)..], L1Entry.Create(_l2Tables[e] << ClusterBits, copied: true).Raw);
        }
    }

    /// <summary>L2 table <paramref name="table"/>: every guest cluster it covers mapped, COPIED; no zero flag, no subcluster bits.</summary>
    public void WriteL2Table(long table, Span<byte> cluster)
    {
        cluster.Clear();
        int entrySize = ExtendedL2 ? 16 : 8;
        long first = table << L2Bits;
        long last = Math.Min(DataClusters, first + (1L << L2Bits));
        int r = FirstRun(first);
        for (long g = first; g < last; g++)
        {
            while (_runs[r].Guest + _runs[r].Count <= g)
            {
                r++;
            }

            long host = _runs[r].Host + (g - _runs[r].Guest);
            BinaryPrimitives.WriteUInt64BigEndian(cluster[(int)((g - first) * entrySize)..], L2Entry.Standard(host << ClusterBits, copied: true).Raw);
        }
    }

    /// <summary>Cluster <paramref name="index"/> of the refcount table.</summary>
    public void WriteRefcountTableCluster(int index, Span<byte> cluster)
    {
        cluster.Clear();
        long first = (long)index << (ClusterBits - 3);
        for (long e = first; e < Math.Min(_refcountBlocks.Length, first + (ClusterSize / 8)); e++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(cluster[(int)((e - first) * 8)..], (ulong)(_refcountBlocks[e] << ClusterBits));
        }
    }

    /// <summary>Refcount block number <paramref name="block"/>: 1 for each cluster in use, else 0.</summary>
    public void WriteRefcountBlock(long block, Span<byte> cluster)
    {
        cluster.Clear();
        long perBlock = (8L << ClusterBits) >> RefcountOrder;
        long first = block * perBlock;
        for (long c = first; c < Math.Min(_used.End, first + perBlock); c++)
        {
            if (_used.Get(c))
            {
                RefcountBlock.Set(cluster, RefcountOrder, c - first, 1);
            }
        }
    }

    /// <summary>Refcount-table index of each refcount block, with its host offset.</summary>
    public IEnumerable<(long Index, long Offset)> RefcountBlocks()
    {
        for (long i = 0; i < _refcountBlocks.Length; i++)
        {
            if (_refcountBlocks[i] != 0)
            {
                yield return (i, _refcountBlocks[i] << ClusterBits);
            }
        }
    }

    private int FirstRun(long guest)
    {
        int lo = 0, hi = _runs.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (_runs[mid].Guest + _runs[mid].Count <= guest)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    private sealed class RefcountTableFullException : Exception
    {
    }

    /// <summary>A bit per host cluster: in use or free.</summary>
    internal sealed class UsedClusters
    {
        private ulong[] _bits = new ulong[64];

        /// <summary>One past the last cluster in use.</summary>
        public long End { get; private set; }

        public bool Get(long c) => (c >> 6) < _bits.Length && (_bits[c >> 6] & (1UL << (int)(c & 63))) != 0;

        public void Set(long c, bool used)
        {
            if ((c >> 6) >= _bits.Length)
            {
                Array.Resize(ref _bits, (int)Math.Max(_bits.Length * 2L, (c >> 6) + 1));
            }

            if (used)
            {
                _bits[c >> 6] |= 1UL << (int)(c & 63);
                End = Math.Max(End, c + 1);
            }
            else
            {
                _bits[c >> 6] &= ~(1UL << (int)(c & 63));
                while (End > 0 && !Get(End - 1))
                {
                    End--;
                }
            }
        }
    }

    /// <summary>
    /// qemu's cluster allocator, as far as a new image needs it: first fit from a moving free index; a cluster
    /// whose refcount block does not exist yet gets one at the next free cluster (describing itself when it can),
    /// after which the allocation starts over, as qemu's -EAGAIN retry does.
    /// </summary>
    private sealed class Allocator
    {
        private readonly int _clusterBits;
        private readonly long _perBlock;
        private long _free;

        public Allocator(int clusterBits, int order, int tableClusters)
        {
            _clusterBits = clusterBits;
            _perBlock = (8L << clusterBits) >> order;
            TableClusters = tableClusters;
            Blocks = new long[(long)tableClusters << (clusterBits - 3)];

            // As qemu's create: header, refcount table, then the refcount blocks covering those.
            TableOffset = 1;
            long next = 1 + tableClusters;
            for (long c = 0; c < next; c++)
            {
                Used.Set(c, true);
            }

            for (long b = 0; b * _perBlock < next; b++)
            {
                Blocks[b] = next;
                Used.Set(next++, true);
            }
        }

        public UsedClusters Used { get; } = new();

        public long[] Blocks { get; private set; }

        public long TableOffset { get; private set; }

        public int TableClusters { get; private set; }

        public long End => Used.End;

        /// <summary>qcow2_alloc_clusters: <paramref name="n"/> contiguous free clusters, refcounted.</summary>
        public long Alloc(long n)
        {
            while (true)
            {
                long at = FindFree(n);
                if (Count(at, n))
                {
                    return at;
                }
            }
        }

        /// <summary>qcow2_alloc_clusters_at: the clusters are known to be free.</summary>
        public void AllocAt(long at, long n)
        {
            while (!Count(at, n))
            {
            }
        }

        /// <summary>
        /// qcow2_refcount_area: refcount blocks for everything up to <paramref name="start"/> + <paramref name="more"/>
        /// (the missing ones from <paramref name="start"/> on), a new table after them, the old table freed.
        /// Returns the first cluster after the area.
        /// </summary>
        public long BuildRefcountArea(long start, long more)
        {
            long entriesPerCluster = 1L << (_clusterBits - 3);
            long blocks = 0, table = 0, last;
            long n = 0;
            do
            {
                last = n;
                blocks = (start + more + table + blocks + _perBlock - 1) / _perBlock;
                table = (blocks + entriesPerCluster - 1) / entriesPerCluster;
                n = start + more + blocks + table;
            }
            while (n != last);

            var newBlocks = new long[table * entriesPerCluster];
            Array.Copy(Blocks, newBlocks, Math.Min(Blocks.Length, newBlocks.Length));
            long pos = start;
            for (long i = start / _perBlock; i < blocks; i++)
            {
                if (newBlocks[i] == 0)
                {
                    newBlocks[i] = pos++;
                }
            }

            long tableAt = pos;
            long end = tableAt + table;
            for (long c = start; c < end; c++)
            {
                Used.Set(c, true);
            }

            for (long c = TableOffset; c < TableOffset + TableClusters; c++)
            {
                Used.Set(c, false);
            }

            _free = Math.Min(_free, TableOffset);
            Blocks = newBlocks;
            TableOffset = tableAt;
            TableClusters = (int)table;
            return end;
        }

        /// <summary>alloc_clusters_noref: the first <paramref name="n"/> free clusters in a row from the free index.</summary>
        private long FindFree(long n)
        {
            long found = 0;
            while (found < n)
            {
                found = Used.Get(_free++) ? 0 : found + 1;
            }

            return _free - n;
        }

        /// <summary>update_refcount +1; false when a refcount block had to be added first (the caller starts over).</summary>
        private bool Count(long at, long n)
        {
            for (long c = at; c < at + n; c++)
            {
                long block = c / _perBlock;
                if (block >= Blocks.Length || Blocks[block] == 0)
                {
                    AddBlock(block);
                    for (long u = at; u < c; u++)
                    {
                        Used.Set(u, false);
                    }

                    // The search starts over from the run's start (qemu-img places the run there, before the new block).
                    _free = Math.Min(_free, at);

                    return false;
                }

                Used.Set(c, true);
            }

            return true;
        }

        /// <summary>alloc_refcount_block: the new block goes to the next free cluster.</summary>
        private void AddBlock(long block)
        {
            if (block >= Blocks.Length)
            {
                throw new RefcountTableFullException();
            }

            long at = FindFree(1);
            if (at / _perBlock == block)
            {
                Used.Set(at, true);
            }
            else if (!Count(at, 1))
            {
                return;
            }

            Blocks[block] = at;
        }
    }
}
