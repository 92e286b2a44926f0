using System.Buffers.Binary;
using System.Text;
using UrlDisk.Formats.Vpc;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Formats;

/// <summary>
/// A differencing VHD over a parent made by qemu-img. qemu-img cannot write differencing VHDs, so the child is
/// laid out here by the VHD specification: footer copy, dynamic header with a W2ru locator, BAT, one block whose
/// sector bitmap marks some sectors present, footer.
/// </summary>
public sealed class VpcDifferencingTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    private const int BlockSize = 2 << 20;

    [Fact]
    public async Task Differencing_vhd_reads_present_sectors_from_itself_and_the_rest_from_its_parent_locally_and_over_http()
    {
        using var q = new QemuTools();
        VhdFormatsTests.MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", "vpc", "src.raw", "parent.vhd");
        var expected = q.QemuRaw("parent.vhd");
        VpcFooter parentFooter;
        await using (var parent = (VpcImage)await ImageOpener.OpenAsync(q.PathOf("parent.vhd")))
        {
            parentFooter = parent.Footer;
        }

        var child = BuildChild(parentFooter, expected);
        Directory.CreateDirectory(q.PathOf("sub"));
        File.WriteAllBytes(q.PathOf("sub/child.vhd"), child);
        File.Copy(q.PathOf("parent.vhd"), q.PathOf("sub/parent.vhd"));

        await using (var image = await ImageOpener.OpenAsync(q.PathOf("sub/child.vhd")))
        {
            Assert.Equal(q.PathOf("sub/parent.vhd"), ((VpcImage)image).ParentLocation);
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image, 300_000));
            var extents = await image.GetExtentsAsync(0, image.Length);
            Assert.Contains(extents, e => e.Depth == 1 && !e.IsHole);
            Assert.Contains(extents, e => e.Depth == 0 && e.Offset <= BlockSize && e.End > BlockSize);
        }

        fixture.Server.Put("vhd-diff/parent.vhd", File.ReadAllBytes(q.PathOf("parent.vhd")));
        string url = fixture.Server.HttpUrl(fixture.Server.Put("vhd-diff/child.vhd", child));
        await using (var image = await ImageOpener.OpenAsync(url))
        {
            Assert.Equal(fixture.Server.HttpUrl("/vhd-diff/parent.vhd"), ((VpcImage)image).ParentLocation);
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image, 1 << 20));
        }

        // A parent with another unique id is refused on first use.
        q.Img("convert", "-f", "raw", "-O", "vpc", "src.raw", "sub/parent.vhd");
        await using (var image = await ImageOpener.OpenAsync(q.PathOf("sub/child.vhd")))
        {
            var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await image.ReadAsync(0, new byte[512]));
            Assert.Contains("unique id", e.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>The child: block 1 holds its first MiB and one more sector (changed in <paramref name="expected"/> to match).</summary>
    private static byte[] BuildChild(VpcFooter parentFooter, byte[] expected)
    {
        int entries = (int)((expected.Length + BlockSize - 1) / BlockSize);
        const long headerOffset = 512;
        const long batOffset = 1536;
        long locatorOffset = batOffset + (((entries * 4) + 511) / 512 * 512);
        long blockSector = (locatorOffset + 512) / 512;
        long dataOffset = (blockSector * 512) + 512;
        var file = new byte[dataOffset + BlockSize + 512];

        var footer = parentFooter with { DiskType = VpcDiskType.Differencing, DataOffset = (ulong)headerOffset, UniqueId = Guid.NewGuid() };
        footer.Write(file);
        footer.Write(file.AsSpan(file.Length - 512));

        var h = file.AsSpan((int)headerOffset, 1024);
        "cxsparse"u8.CopyTo(h);
        BinaryPrimitives.WriteUInt64BigEndian(h[8..], ulong.MaxValue);
        BinaryPrimitives.WriteUInt64BigEndian(h[16..], batOffset);
        BinaryPrimitives.WriteUInt32BigEndian(h[24..], 0x00010000);
        BinaryPrimitives.WriteUInt32BigEndian(h[28..], (uint)entries);
        BinaryPrimitives.WriteUInt32BigEndian(h[32..], BlockSize);
        parentFooter.UniqueId.TryWriteBytes(h.Slice(40, 16), bigEndian: true, out _);
        BinaryPrimitives.WriteUInt32BigEndian(h[56..], parentFooter.Timestamp);
        Encoding.BigEndianUnicode.GetBytes("parent.vhd", h.Slice(64, 512));
        byte[] locator = Encoding.Unicode.GetBytes(".\\parent.vhd");
        "W2ru"u8.CopyTo(h[576..]);
        BinaryPrimitives.WriteUInt32BigEndian(h[580..], 512);
        BinaryPrimitives.WriteUInt32BigEndian(h[584..], (uint)locator.Length);
        BinaryPrimitives.WriteUInt64BigEndian(h[592..], (ulong)locatorOffset);
        uint sum = 0;
        foreach (byte b in h)
        {
            sum += b;
        }

        BinaryPrimitives.WriteUInt32BigEndian(h[36..], ~sum);
        locator.CopyTo(file.AsSpan((int)locatorOffset));

        for (int i = 0; i < entries; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(file.AsSpan((int)batOffset + (i * 4)), i == 1 ? (uint)blockSector : uint.MaxValue);
        }

        // Sectors 0..2047 of block 1 (its first MiB) and sector 2400 are present; the bitmap is most significant bit first.
        var bitmap = file.AsSpan((int)(blockSector * 512), 512);
        bitmap[..256].Fill(0xFF);
        bitmap[300] = 0x80;
        file.AsSpan((int)dataOffset, 1 << 20).Fill(0x77);
        file.AsSpan((int)dataOffset + (2400 * 512), 512).Fill(0x78);
        // Bytes of present-looking data in absent sectors must not show through.
        file.AsSpan((int)dataOffset + (2401 * 512), 512).Fill(0xEE);

        expected.AsSpan(BlockSize, 1 << 20).Fill(0x77);
        expected.AsSpan(BlockSize + (2400 * 512), 512).Fill(0x78);
        return file;
    }
}
