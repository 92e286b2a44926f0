using System.Buffers.Binary;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;

namespace UrlDisk.IntegrationTests.Vmdk;

/// <summary>streamOptimized written by urldisk and checked by qemu-img; malformed vmdk and vdi files refused cleanly.</summary>
public class VmdkWriteAndMalformedTests(NginxFixture nginx) : IClassFixture<NginxFixture>
{
    [Fact]
    public async Task Convert_to_stream_optimized_from_http_is_accepted_by_qemu_img_check_and_compare()
    {
        using var q = new QemuTools();
        var source = FormatImages.MakeSource(q);
        string url = nginx.Server.HttpUrl(nginx.Server.Put($"write-{Guid.NewGuid():N}/base.raw", source));

        var result = await UrlDiskCli.RunAsync("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized,adapter_type=lsilogic", url, q.PathOf("out.vmdk"));

        Assert.True(result.ExitCode == 0, result.ToString());
        q.Img("check", "out.vmdk");
        q.Img("compare", "-f", "raw", "-F", "vmdk", "base.raw", "out.vmdk");
        string info = q.Img("info", "out.vmdk");
        Assert.Contains("create type: streamOptimized", info, StringComparison.Ordinal);
        var header = File.ReadAllBytes(q.PathOf("out.vmdk")).AsSpan(0, 512);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(header[4..])); // ESXi takes version 3 stream files only
        Assert.Contains("ddb.adapterType = \"lsilogic\"", System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(q.PathOf("out.vmdk")).AsSpan(512, 1024)), StringComparison.Ordinal);

        // And back: urldisk reads its own footer-directory layout, and qemu's preallocated one.
        var back = await UrlDiskCli.RunAsync("compare", q.PathOf("base.raw"), q.PathOf("out.vmdk"));
        Assert.True(back.ExitCode == 0, back.ToString());
    }

    [Theory]
    [InlineData("", "subformat")]
    [InlineData("subformat=monolithicSparse", "only -o subformat=streamOptimized")]
    [InlineData("subformat=streamOptimized,adapter_type=scsi", "adapter_type=scsi")]
    [InlineData("subformat=streamOptimized,cluster_size=4k", "cluster_size")]
    public async Task Unsupported_vmdk_output_options_are_refused_and_nothing_is_written(string options, string expected)
    {
        using var q = new QemuTools();
        FormatImages.MakeSource(q);
        var args = new List<string> { "convert", "-O", "vmdk" };
        if (options.Length > 0)
        {
            args.AddRange(["-o", options]);
        }

        var result = await UrlDiskCli.RunAsync([.. args, q.PathOf("base.raw"), q.PathOf("out.vmdk")]);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(expected, result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(q.PathOf("out.vmdk")));
    }

    /// <summary>One field of a qemu-img image overwritten; the open fails with the structure and offset named, no crash.</summary>
    [Theory]
    [InlineData("vmdk", "subformat=monolithicSparse", 20, 8, 0L, "grain size 0")]
    [InlineData("vmdk", "subformat=monolithicSparse", 44, 4, 4096L, "entries per grain table")]
    [InlineData("vmdk", "subformat=monolithicSparse", 56, 8, 0x7FFFFFFFL, "grain directory at sector")]
    [InlineData("vmdk", "subformat=monolithicSparse", 4, 4, 9L, "version 9")]
    [InlineData("vmdk", "subformat=streamOptimized", 8, 4, 0x01030003L, "unknown incompatible bits")]
    [InlineData("vmdk", "subformat=streamOptimized", 56, 8, -1L, "footer marker")]
    [InlineData("vdi", "static=off", 68, 4, 0x00010002L, "version 1.2")]
    [InlineData("vdi", "static=off", 376, 4, 1000L, "block size 1000")]
    [InlineData("vdi", "static=off", 384, 4, 0x01000000L, "block map at offset")]
    [InlineData("vdi", "static=off", 384, 4, 0x3FFFFFFFL, "more than the 33554432 allowed")]
    [InlineData("vmdk", "subformat=monolithicSparse", 12, 8, 1L << 50, "entries, more than the 33554432 allowed")]
    public async Task Malformed_header_fields_give_a_clean_error(string format, string options, int offset, int width, long value, string expected)
    {
        using var q = new QemuTools();
        FormatImages.MakeSource(q);
        FormatImages.Convert(q, format, options, "bad." + format);
        var bytes = File.ReadAllBytes(q.PathOf("bad." + format));
        if (width == 8)
        {
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(offset), value);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset), (uint)value);
        }

        File.WriteAllBytes(q.PathOf("bad." + format), bytes);

        var result = await UrlDiskCli.RunAsync("info", q.PathOf("bad." + format));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(format + ":", result.Stderr, StringComparison.Ordinal);
        Assert.Contains(expected, result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Corrupt_grain_data_fails_the_read_with_its_offset_not_the_process()
    {
        using var q = new QemuTools();
        FormatImages.MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "base.raw", "bad.vmdk");
        var bytes = File.ReadAllBytes(q.PathOf("bad.vmdk"));
        // The first grain marker follows the 128-sector overhead: garble its zlib stream.
        bytes.AsSpan((128 * 512) + 12, 64).Fill(0xEE);
        File.WriteAllBytes(q.PathOf("bad.vmdk"), bytes);

        var result = await UrlDiskCli.RunAsync("convert", "-O", "raw", q.PathOf("bad.vmdk"), q.PathOf("out.raw"));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("vmdk:", result.Stderr, StringComparison.Ordinal);
        Assert.Contains($"at offset {128 * 512}", result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(q.PathOf("out.raw")));
    }

    [Fact]
    public async Task Descriptor_with_a_bad_extent_line_names_the_line()
    {
        using var q = new QemuTools();
        File.WriteAllText(q.PathOf("bad.vmdk"), "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW lots FLAT \"x-flat.vmdk\" 0\n");

        var result = await UrlDiskCli.RunAsync("info", "-f", "vmdk", q.PathOf("bad.vmdk"));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("descriptor line 6", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("'lots'", result.Stderr, StringComparison.Ordinal);
    }
}
