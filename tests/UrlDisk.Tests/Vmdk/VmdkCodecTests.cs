using System.Buffers.Binary;
using System.Text;
using UrlDisk.Formats.Vdi;
using UrlDisk.Formats.Vmdk;

namespace UrlDisk.Tests.Vmdk;

public class VmdkCodecTests
{
    private const string QemuFlatDescriptor = "# Disk DescriptorFile\nversion=1\nCID=513790e5\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n# Extent description\nRW 10240 FLAT \"disk one-flat.vmdk\" 0\nRDONLY 2048 ZERO\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"ide\"\nddb.geometry.heads = \"16\"\n";

    [Fact]
    public void Descriptor_parses_header_keys_extents_and_ddb_and_stops_at_nul_padding()
    {
        var bytes = new byte[4096];
        Encoding.UTF8.GetBytes(QemuFlatDescriptor.Replace("\n", "\r\n", StringComparison.Ordinal)).CopyTo(bytes, 0);

        Assert.True(VmdkDescriptor.TryParse(bytes, out var d, out string? error), error);

        Assert.Equal(0x513790e5u, d.Cid);
        Assert.Equal(VmdkDescriptor.NoParent, d.ParentCid);
        Assert.Equal("monolithicFlat", d.CreateType);
        Assert.Equal(new VmdkExtentLine("RW", 10240, "FLAT", "disk one-flat.vmdk", 0), d.Extents[0]);
        Assert.Equal(new VmdkExtentLine("RDONLY", 2048, "ZERO", null, 0), d.Extents[1]);
        Assert.Equal("16", d.Ddb["geometry.heads"]);
        Assert.True(VmdkDescriptor.Looks(bytes));
    }

    [Theory]
    [InlineData("CID=zz\n", "CID=zz is not a 32-bit hexadecimal number")]
    [InlineData("version=4\n", "version=4 is not supported")]
    [InlineData("RW 10 FLAT \"x\n", "no closing quote")]
    [InlineData("RW -5 FLAT \"x\"\n", "'-5' is not a number of sectors")]
    [InlineData("RW 10 FLAT\n", "a FLAT extent needs a file name")]
    [InlineData("just words\n", "neither key=value nor an extent line")]
    public void Bad_descriptor_lines_are_named(string line, string expected)
    {
        var text = "version=1\n" + line;

        Assert.False(VmdkDescriptor.TryParse(Encoding.UTF8.GetBytes(text), out _, out string? error));

        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("# Disk DescriptorFile\nversion=1\n", true)]
    [InlineData("\n\n  version = 1\n", true)]
    [InlineData("createType=\"x\"\nversion=1\n", false)]
    [InlineData("", false)]
    public void Probe_looks_at_the_first_line_that_is_not_a_comment(string text, bool expected)
        => Assert.Equal(expected, VmdkDescriptor.Looks(Encoding.UTF8.GetBytes(text)));

    [Theory]
    [InlineData("test-flat.vmdk", "https://vc/folder/test/test.vmdk?dcPath=Datacenter&dsName=datastore1", "https://vc/folder/test/test-flat.vmdk?dcPath=Datacenter&dsName=datastore1")]
    [InlineData("d-s001.vmdk", "http://h/img/d.vmdk", "http://h/img/d-s001.vmdk")]
    [InlineData("d-flat.vmdk", "/srv/img/d.vmdk", "/srv/img/d-flat.vmdk")]
    [InlineData("http://other/x.vmdk", "https://h/a/d.vmdk?q=1", "http://other/x.vmdk")]
    public void Extent_names_resolve_beside_the_descriptor_keeping_its_query(string name, string descriptor, string expected)
        => Assert.Equal(expected, ExtentLocation.Resolve(name, descriptor));

    [Fact]
    public void Sparse_header_round_trips_and_refuses_bad_fields_by_offset()
    {
        var h = new VmdkSparseHeader
        {
            Version = 3,
            Flags = 0x30001,
            Capacity = 10240,
            GrainSize = 128,
            DescriptorOffset = 1,
            DescriptorSize = 20,
            NumGtesPerGt = 512,
            GdOffset = VmdkSparseHeader.GdAtEnd,
            OverHead = 128,
            CompressAlgorithm = 1,
        };
        var bytes = new byte[512];
        h.Write(bytes);

        Assert.True(VmdkSparseHeader.TryRead(bytes, out var back, out string? error), error);
        Assert.Equal(h, back);
        Assert.Equal(80, back.GrainCount);
        Assert.Equal(1, back.GdEntries);

        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(20), 3);
        Assert.False(VmdkSparseHeader.TryRead(bytes, out _, out error));
        Assert.Contains("offset 20", error, StringComparison.Ordinal);
        Assert.False(VmdkSparseHeader.TryRead(bytes.AsSpan(0, 100), out _, out error));
        Assert.Contains("100 bytes", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Vdi_header_refuses_differencing_images_and_extra_block_data()
    {
        var b = new byte[512];
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(64), VdiHeader.Signature);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(68), VdiHeader.Version11);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(76), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(340), 512);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(344), 1024);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(360), 512);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(368), 1 << 20);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(376), 1 << 20);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(384), 1);
        Assert.True(VdiHeader.TryRead(b, out _, out string? error), error);

        b[440] = 1;
        Assert.False(VdiHeader.TryRead(b, out _, out error));
        Assert.Contains("differencing", error, StringComparison.Ordinal);

        b[440] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(380), 512);
        Assert.False(VdiHeader.TryRead(b, out _, out error));
        Assert.Contains("offset 380", error, StringComparison.Ordinal);
    }
}
