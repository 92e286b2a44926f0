using System.Buffers.Binary;
using UrlDisk.Formats.Qcow2;

namespace UrlDisk.Tests.Qcow2;

/// <summary>Byte-level tests of the qcow2 span codecs.</summary>
public class Qcow2CodecTests
{
    private static byte[] V3Header(Action<byte[]>? patch = null)
    {
        var b = new byte[4096];
        BinaryPrimitives.WriteUInt32BigEndian(b, 0x514649FB);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), 3);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(20), 16);
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(24), 1UL << 30);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(36), 2);
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(40), 0x30000);
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(48), 0x10000);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(56), 1);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(96), 4);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(100), 112);
        patch?.Invoke(b);
        return b;
    }

    [Fact]
    public void Header_v3_reads_every_field_and_writes_the_same_bytes()
    {
        var bytes = V3Header(b =>
        {
            BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(72), Qcow2Features.CompressionType);
            BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(80), 1);
            b[104] = 1;
        });
        Assert.True(Qcow2Header.TryRead(bytes, out var h, out var error), error);
        Assert.Equal(3u, h.Version);
        Assert.Equal(16, h.ClusterBits);
        Assert.Equal(1UL << 30, h.Size);
        Assert.Equal(2u, h.L1Size);
        Assert.Equal(0x30000UL, h.L1TableOffset);
        Assert.Equal(0x10000UL, h.RefcountTableOffset);
        Assert.Equal(1u, h.RefcountTableClusters);
        Assert.Equal(16, h.RefcountBits);
        Assert.Equal(112u, h.HeaderLength);
        Assert.Equal(1, h.CompressionType);
        Assert.Equal(1UL, h.CompatibleFeatures);
        var written = new byte[4096];
        h.Write(written);
        Assert.Equal(bytes.AsSpan(0, 112).ToArray(), written.AsSpan(0, 112).ToArray());
    }

    [Fact]
    public void Header_v2_implies_72_bytes_and_16_bit_refcounts()
    {
        var bytes = V3Header(b =>
        {
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), 2);
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(96), 6); // ignored in v2
        });
        Assert.True(Qcow2Header.TryRead(bytes.AsSpan(0, 72), out var h, out _));
        Assert.Equal(72u, h.HeaderLength);
        Assert.Equal(4, h.RefcountOrder);
        Assert.Equal(0UL, h.IncompatibleFeatures);
        var written = new byte[72];
        h.Write(written);
        Assert.Equal(bytes.AsSpan(0, 72).ToArray(), written);
    }

    [Fact]
    public void Unknown_header_fields_are_kept()
    {
        var bytes = V3Header(b =>
        {
            BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(100), 120);
            b[115] = 0xAB;
        });
        Assert.True(Qcow2Header.TryRead(bytes, out var h, out _));
        Assert.Equal(8, h.UnknownFields.Length);
        var written = new byte[120];
        h.Write(written);
        Assert.Equal(0xAB, written[115]);
    }

    [Theory]
    [InlineData(0, 0x11223344u, "magic")]
    [InlineData(4, 4u, "version 4")]
    [InlineData(20, 8u, "cluster_bits 8")]
    [InlineData(20, 22u, "cluster_bits 22")]
    [InlineData(96, 7u, "refcount_order 7")]
    [InlineData(100, 100u, "header_length 100")]
    [InlineData(100, 108u, "header_length 108")]
    public void Bad_header_fields_are_named(int offset, uint value, string expected)
    {
        var bytes = V3Header(b => BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(offset), value));
        Assert.False(Qcow2Header.TryRead(bytes, out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Compression_type_and_its_feature_bit_must_agree()
    {
        var bytes = V3Header(b => b[104] = 1);
        Assert.False(Qcow2Header.TryRead(bytes, out _, out var error));
        Assert.Contains("compression", error, StringComparison.Ordinal);
        Assert.False(Qcow2Header.TryRead(V3Header(b => b[104] = 2), out _, out _));
    }

    [Fact]
    public void Truncated_header_is_refused()
    {
        Assert.False(Qcow2Header.TryRead(V3Header().AsSpan(0, 50), out _, out var error));
        Assert.Contains("50 bytes", error, StringComparison.Ordinal);
        Assert.False(Qcow2Header.TryRead(V3Header().AsSpan(0, 100), out _, out _));
    }

    [Fact]
    public void Header_cluster_round_trips_extensions_and_backing_name()
    {
        var header = new Qcow2Header { Size = 1 << 20, L1Size = 1, L1TableOffset = 0x30000, RefcountTableOffset = 0x10000, RefcountTableClusters = 1 };
        var hc = new Qcow2HeaderCluster
        {
            Header = header,
            BackingFile = "http://h/dir/base.qcow2",
            BackingFormat = "qcow2",
            FeatureNames = FeatureName.Standard,
            OtherExtensions = [new HeaderExtension(0x12345678, [1, 2, 3])],
        };
        var cluster = new byte[65536];
        Assert.True(hc.TryWrite(cluster, out var written));
        // Backing format extension first, right after the 112-byte header.
        Assert.Equal(HeaderExtension.BackingFormat, BinaryPrimitives.ReadUInt32BigEndian(cluster.AsSpan(112)));
        Assert.Equal(5u, BinaryPrimitives.ReadUInt32BigEndian(cluster.AsSpan(116)));
        Assert.Equal((ulong)written.BackingFileOffset, BinaryPrimitives.ReadUInt64BigEndian(cluster.AsSpan(8)));
        Assert.True(Qcow2HeaderCluster.TryRead(cluster, out var back, out var error), error);
        Assert.Equal("http://h/dir/base.qcow2", back.BackingFile);
        Assert.Equal("qcow2", back.BackingFormat);
        Assert.Equal(8, back.FeatureNames.Count);
        Assert.Equal("extended L2 entries", back.IncompatibleFeatureName(4));
        Assert.Equal([1, 2, 3], Assert.Single(back.OtherExtensions).Data);
    }

    [Fact]
    public void Extension_running_past_its_area_is_refused()
    {
        var area = new byte[64];
        BinaryPrimitives.WriteUInt32BigEndian(area, HeaderExtension.BackingFormat);
        BinaryPrimitives.WriteUInt32BigEndian(area.AsSpan(4), 1000);
        Assert.False(HeaderExtension.TryReadAll(area, 112, out _, out var error));
        Assert.Contains("offset 112", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Feature_name_entry_is_48_bytes()
    {
        var entry = new FeatureName(FeatureType.Autoclear, 1, "raw external data");
        var bytes = new byte[48];
        entry.Write(bytes);
        Assert.Equal(2, bytes[0]);
        Assert.Equal(1, bytes[1]);
        Assert.Equal((byte)'r', bytes[2]);
        Assert.True(FeatureName.TryRead(bytes, out var back));
        Assert.Equal(entry, back);
    }

    [Fact]
    public void L1_and_standard_L2_entries_decode_flags_and_offsets()
    {
        var l1 = new L1Entry(0x8000_0000_0005_0000UL);
        Assert.True(l1.IsCopied);
        Assert.Equal(0x50000, l1.L2Offset);
        Assert.False(l1.HasReservedBits);
        Assert.True(new L1Entry(0x0000_0000_0005_0001UL).HasReservedBits);

        var normal = new L2Entry(0x8000_0000_0007_0000UL);
        Assert.Equal(ClusterKind.Normal, normal.Kind);
        Assert.Equal(0x70000, normal.HostOffset);
        Assert.Equal(ClusterKind.Zero, new L2Entry(1).Kind);
        Assert.Equal(ClusterKind.Zero, L2Entry.Standard(0x70000, true, zero: true).Kind);
        Assert.Equal(ClusterKind.Unallocated, new L2Entry(0).Kind);
        Assert.True(new L2Entry(0x0000_0000_0007_0002UL).HasReservedBits);
        Assert.Equal(0x8000_0000_0007_0001UL, L2Entry.Standard(0x70000, true, zero: true).Raw);
    }

    [Fact]
    public void Extended_L2_bitmap_gives_each_subcluster_its_kind()
    {
        var e = new L2Entry(0x8000_0000_0007_0000UL, 0x0000_0004_0000_0003UL);
        Assert.Equal(ClusterKind.Normal, e.SubclusterKind(0));
        Assert.Equal(ClusterKind.Normal, e.SubclusterKind(1));
        Assert.Equal(ClusterKind.Zero, e.SubclusterKind(2));
        Assert.Equal(ClusterKind.Unallocated, e.SubclusterKind(3));
    }

    [Theory]
    [InlineData(16, 0x12345L, 1000)]
    [InlineData(9, 0x1000L, 300)]
    [InlineData(21, 0x7FFF_FFFFL, 1_500_000)]
    public void Compressed_descriptor_round_trips(int clusterBits, long offset, int length)
    {
        ulong raw = CompressedDescriptor.Encode(offset, length, clusterBits);
        Assert.True(new L2Entry(raw).IsCompressed);
        var d = CompressedDescriptor.Decode(raw, clusterBits);
        Assert.Equal(offset, d.HostOffset);
        Assert.True(d.MaxCompressedLength >= length);
        Assert.True(d.MaxCompressedLength < length + 512);
    }

    [Fact]
    public void Compressed_descriptor_uses_qemus_bit_split()
    {
        // 64 KiB clusters: offset in bits 0..53, additional sectors from bit 54.
        ulong raw = Qcow2Entries.Compressed | (3UL << 54) | 0x10200;
        var d = CompressedDescriptor.Decode(raw, 16);
        Assert.Equal(0x10200, d.HostOffset);
        Assert.Equal(4, d.SectorCount);
        Assert.Equal(2048, d.MaxCompressedLength);
        Assert.Equal((1L, 1L), d.HostClusters(16));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void Refcounts_of_every_width_round_trip_without_touching_neighbours(int order)
    {
        var block = new byte[512];
        long entries = 512 * 8 >> order;
        ulong max = RefcountBlock.MaxValue(order);
        for (long i = 0; i < entries; i++)
        {
            RefcountBlock.Set(block, order, i, (ulong)i & max);
        }

        for (long i = 0; i < entries; i++)
        {
            Assert.Equal((ulong)i & max, RefcountBlock.Get(block, order, i));
        }
    }

    [Fact]
    public void Sub_byte_refcounts_are_lsb_first()
    {
        var block = new byte[2];
        RefcountBlock.Set(block, 0, 0, 1);
        RefcountBlock.Set(block, 0, 9, 1);
        Assert.Equal([0x01, 0x02], block);
        var b2 = new byte[1];
        RefcountBlock.Set(b2, 1, 1, 3);
        Assert.Equal(0x0C, b2[0]);
        var b16 = new byte[4];
        RefcountBlock.Set(b16, 4, 1, 0x1234);
        Assert.Equal([0, 0, 0x12, 0x34], b16);
    }

    [Fact]
    public void Snapshot_entry_round_trips_with_extra_data_and_padding()
    {
        var extra = new byte[24];
        BinaryPrimitives.WriteUInt64BigEndian(extra.AsSpan(8), 1 << 30);
        var s = new SnapshotEntry { L1Offset = 0x50000, L1Size = 2, Id = "1", Name = "before upgrade", DateSeconds = 1700000000, VmClockNanoseconds = 5, ExtraData = extra };
        var bytes = new byte[s.StoredLength + 8];
        int n = s.Write(bytes);
        Assert.Equal(0, n % 8);
        Assert.Equal(40 + 24 + 1 + 14 + 1, n); // padded to 8
        Assert.True(SnapshotEntry.TryRead(bytes, out var back, out int consumed));
        Assert.Equal(n, consumed);
        Assert.Equal("before upgrade", back.Name);
        Assert.Equal("1", back.Id);
        Assert.Equal(0x50000, back.L1Offset);
        Assert.Equal(1UL << 30, back.DiskSize);
        Assert.False(SnapshotEntry.TryRead(bytes.AsSpan(0, 50), out _, out _));
    }
}
