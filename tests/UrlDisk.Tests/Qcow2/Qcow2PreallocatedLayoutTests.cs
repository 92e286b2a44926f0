using System.Buffers.Binary;
using UrlDisk.Formats.Qcow2;

namespace UrlDisk.Tests.Qcow2;

/// <summary>The preallocated layout on its own: every cluster accounted for exactly once, refcounts covering everything.</summary>
public class Qcow2PreallocatedLayoutTests
{
    /// <summary>
    /// Walks the planned image: header, refcount table, refcount blocks, L1, L2 tables and data clusters never
    /// overlap, each is marked in use (and nothing else is), every refcount block is listed in the table and says 1
    /// for exactly the clusters in use (its own included), and every guest cluster maps to its own host cluster.
    /// </summary>
    private static Qcow2PreallocatedLayout PlanAndVerify(long size, Qcow2CreateOptions o, string mode)
    {
        var layout = Qcow2PreallocatedLayout.Plan(size, o, mode);
        long cs = layout.ClusterSize;
        var owner = new Dictionary<long, string>();
        void Claim(long offset, long clusters, string what)
        {
            Assert.Equal(0, offset % cs);
            for (long c = offset / cs; c < (offset / cs) + clusters; c++)
            {
                Assert.True(owner.TryAdd(c, what), $"cluster {c} is both {owner.GetValueOrDefault(c)} and {what}");
            }
        }

        Claim(0, 1, "header");
        Claim(layout.RefcountTableOffset, layout.RefcountTableClusters, "refcount table");
        foreach (long b in layout.RefcountBlockOffsets)
        {
            Claim(b, 1, "refcount block");
        }

        Claim(layout.L1Offset, layout.L1Clusters, "L1 table");
        foreach (long t in layout.L2TableOffsets)
        {
            Claim(t, 1, "L2 table");
        }

        long mapped = 0;
        foreach (var run in layout.Runs)
        {
            Assert.Equal(mapped, run.Guest);
            Claim(run.Host * cs, run.Count, "data");
            mapped += run.Count;
        }

        Assert.Equal((size + cs - 1) / cs, mapped);
        long fileClusters = (layout.FileLength + cs - 1) / cs;
        Assert.True(owner.Keys.Max() < fileClusters, "the file does not reach its last cluster");
        for (long c = 0; c < fileClusters; c++)
        {
            Assert.Equal(owner.ContainsKey(c), layout.IsUsed(c));
        }

        // Refcounts as a reader sees them: through the table, block by block.
        int order = System.Numerics.BitOperations.Log2((uint)o.RefcountBits);
        long perBlock = (cs * 8) >> order;
        var table = new byte[layout.RefcountTableClusters * cs];
        for (int i = 0; i < layout.RefcountTableClusters; i++)
        {
            layout.WriteRefcountTableCluster(i, table.AsSpan((int)(i * cs), (int)cs));
        }

        var block = new byte[cs];
        long loaded = -1;
        for (long c = 0; c < fileClusters; c++)
        {
            long index = c / perBlock;
            long blockOffset = index * 8 < table.Length ? (long)BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan((int)(index * 8))) : 0;
            if (!owner.ContainsKey(c))
            {
                continue;
            }

            Assert.True(blockOffset != 0, $"cluster {c} ({owner[c]}) has no refcount block");
            if (loaded != index)
            {
                layout.WriteRefcountBlock(index, block);
                loaded = index;
            }

            Assert.Equal(1UL, RefcountBlock.Get(block, order, c % perBlock));
        }

        // The L2 entries point where the runs say, COPIED, with no zero flag.
        var l2 = new byte[cs];
        var firstRun = layout.Runs[0];
        layout.WriteL2Table(0, l2);
        ulong first = BinaryPrimitives.ReadUInt64BigEndian(l2);
        Assert.Equal((ulong)(firstRun.Host * cs) | Qcow2Entries.Copied, first);
        if (o.ExtendedL2)
        {
            Assert.Equal(0UL, BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(8)));
        }

        return layout;
    }

    [Theory]
    [InlineData("metadata", 1_000_000_000L, 65536, 16, false)]
    [InlineData("metadata", 3L << 30, 65536, 64, false)]
    [InlineData("metadata", 659_968L, 65536, 1, true)]
    [InlineData("metadata", 1L << 30, 4096, 16, false)]
    [InlineData("falloc", 1_000_000_000L, 65536, 16, false)]
    [InlineData("falloc", 3L << 30, 65536, 64, false)]
    [InlineData("full", 200L << 20, 4096, 2, false)]
    public void Every_cluster_is_placed_once_and_refcounted(string mode, long size, int clusterSize, int refcountBits, bool extendedL2)
        => PlanAndVerify(size, new Qcow2CreateOptions { ClusterSize = clusterSize, RefcountBits = refcountBits, ExtendedL2 = extendedL2 }, mode);

    [Fact]
    public void Small_images_are_laid_out_as_qemu_img_lays_them_out()
    {
        // qemu-img 7.2 create -o preallocation=metadata 1000000000: header, refcount table, refcount block, L1, then
        // each L2 table followed by its data clusters.
        var m = PlanAndVerify(1_000_000_000, new Qcow2CreateOptions(), "metadata");
        Assert.Equal(0x10000, m.RefcountTableOffset);
        Assert.Equal([0x20000L], m.RefcountBlockOffsets);
        Assert.Equal(0x30000, m.L1Offset);
        Assert.Equal([0x40000L, 0x20050000L], m.L2TableOffsets);
        Assert.Equal(0x50000, m.Runs[0].Host * 65536);
        Assert.Equal(0x3ba10000, m.FileLength);
        Assert.Equal(0x3ba00000L + (1_000_000_000 % 65536), m.TailZeros);

        // falloc: a new refcount table after the L1 table, the data in one piece, the first L2 table where the old
        // refcount table was, the second after the data.
        var f = PlanAndVerify(1_000_000_000, new Qcow2CreateOptions(), "falloc");
        Assert.Equal(0x40000, f.RefcountTableOffset);
        Assert.Equal([0x10000L, 0x3ba00000L], f.L2TableOffsets);
        Assert.Equal(0x50000, f.Runs[0].Host * 65536);
        Assert.Null(f.TailZeros);
    }

    [Fact]
    public void Refcount_blocks_between_the_data_describe_themselves()
    {
        // 64-bit refcounts, 64 KiB clusters: a block covers 512 MiB, so a 3 GiB image needs blocks placed inline.
        var layout = PlanAndVerify(3L << 30, new Qcow2CreateOptions { RefcountBits = 64 }, "metadata");
        long perBlock = 8192;
        foreach (var (index, offset) in layout.RefcountBlocks().Skip(1))
        {
            Assert.Equal(index, offset / 65536 / perBlock);
        }
    }

    [Fact]
    public void A_refcount_table_qemu_would_grow_is_made_big_enough_up_front()
    {
        // 512-byte clusters: one refcount-table cluster covers 8 MiB only.
        var layout = PlanAndVerify(100L << 20, new Qcow2CreateOptions { ClusterSize = 512 }, "metadata");
        Assert.True(layout.RefcountTableClusters > 1);
    }

    [Fact]
    public void A_terabyte_is_planned_without_holding_its_tables()
    {
        // Only offsets are kept (a bit per host cluster, one entry per L2 table); the tables are generated one at a time.
        var layout = Qcow2PreallocatedLayout.Plan(1L << 40, new Qcow2CreateOptions(), "metadata");
        Assert.Equal(2048, layout.L2TableOffsets.Count());
        Assert.True(layout.FileLength > 1L << 40);
        var l2 = new byte[65536];
        layout.WriteL2Table(2047, l2);
        Assert.NotEqual(0UL, BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(65528)));
    }
}
