using System.Text.Json.Nodes;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Formats.Vhdx;
using UrlDisk.Formats.Vpc;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Formats;

/// <summary>VHD (vpc) and VHDX images made by qemu-img, read locally and over http, compared byte for byte with qemu's reading.</summary>
public sealed class VhdFormatsTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    /// <summary>An 11 MiB + 3 KiB disk (not a CHS fit) with data, a zero run and holes.</summary>
    internal static void MakeSource(QemuTools q, string name = "src.raw")
    {
        q.Img("create", "-f", "raw", name, ((11 << 20) + 3072).ToString(System.Globalization.CultureInfo.InvariantCulture));
        q.Io("-f", "raw", "-c", "write -P 0x11 0 1536k", "-c", "write -P 0x22 3M 100k", "-c", "write -P 0x33 7M 2M", "-c", "write -P 0x44 11M 3k", name);
    }

    [Theory]
    [InlineData("vpc", "subformat=fixed", true)]
    [InlineData("vpc", "subformat=fixed,force_size=on", true)]
    [InlineData("vpc", "subformat=dynamic", false)]
    [InlineData("vpc", "subformat=dynamic,force_size=on", false)]
    [InlineData("vhdx", "subformat=fixed", false)]
    [InlineData("vhdx", "subformat=dynamic", false)]
    [InlineData("vhdx", "subformat=dynamic,block_size=1M,block_state_zero=off", false)]
    public async Task Image_made_by_qemu_img_reads_like_qemu_locally_and_over_http(string format, string options, bool needsFormat)
    {
        using var q = new QemuTools();
        MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", format, "-o", options, "src.raw", "image");
        var expected = QemuRaw(q, format, "image");
        string? f = needsFormat ? format : null;
        await using (var image = await ImageOpener.OpenAsync(q.PathOf("image"), f))
        {
            Assert.Equal(format, image.Info.Driver);
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image, 300_000));
            await AssertExtentsCoverAsync(image, expected);
        }

        string url = fixture.Server.HttpUrl(fixture.Server.Put($"vhd/{format}-{options.Replace(',', '-').Replace('=', '-')}.img", File.ReadAllBytes(q.PathOf("image"))));
        await using (var image = await ImageOpener.OpenAsync(url, f))
        {
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image, 1 << 20));
        }
    }

    [Fact]
    public async Task Fixed_vhd_named_dot_vhd_is_probed_by_its_footer_locally_and_over_http()
    {
        using var q = new QemuTools();
        MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed", "src.raw", "azure-os.vhd");
        var expected = QemuRaw(q, "vpc", "azure-os.vhd");
        byte[] file = File.ReadAllBytes(q.PathOf("azure-os.vhd"));
        string url = fixture.Server.HttpUrl(fixture.Server.Put("vhd-probe/azure-os.vhd", file));
        foreach (string location in new[] { q.PathOf("azure-os.vhd"), url, url + "?sv=2020&sig=x" })
        {
            await using var image = await ImageOpener.OpenAsync(location);
            Assert.Equal("vpc", image.Info.Driver);
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image, 1 << 20));
        }

        // The same bytes under another name stay raw, as qemu-img reads them: no extra read of the tail.
        File.Copy(q.PathOf("azure-os.vhd"), q.PathOf("disk.img"));
        await using (var raw = await ImageOpener.OpenAsync(q.PathOf("disk.img")))
        {
            Assert.Equal("raw", raw.Info.Driver);
            Assert.Equal(file.Length, raw.Length);
        }

        // A raw file named .vhd without a footer is still raw.
        await File.WriteAllBytesAsync(q.PathOf("plain.vhd"), new byte[1 << 20]);
        await using (var plain = await ImageOpener.OpenAsync(q.PathOf("plain.vhd")))
        {
            Assert.Equal("raw", plain.Info.Driver);
        }
    }

    /// <summary>The guest bytes as qemu reads them with the format named (qemu probes a fixed VHD as raw).</summary>
    private static byte[] QemuRaw(QemuTools q, string format, string image)
    {
        q.Img("convert", "-f", format, "-O", "raw", image, "qemu-view.raw");
        var bytes = File.ReadAllBytes(q.PathOf("qemu-view.raw"));
        File.Delete(q.PathOf("qemu-view.raw"));
        return bytes;
    }

    /// <summary>Every extent reported as zero reads as zeros in qemu's view too; the extents tile the disk.</summary>
    private static async Task AssertExtentsCoverAsync(IBlockDevice image, byte[] expected)
    {
        var extents = await image.GetExtentsAsync(0, image.Length);
        Assert.Equal(0, extents[0].Offset);
        Assert.Equal(image.Length, extents[^1].End);
        foreach (var e in extents.Where(e => e.IsZero))
        {
            Assert.False(expected.AsSpan((int)e.Offset, (int)e.Length).ContainsAnyExcept((byte)0), $"extent {e} is not zero");
        }
    }

    [Fact]
    public async Task Vpc_size_follows_qemu_chs_rule_and_force_size_calc_overrides_it()
    {
        using var q = new QemuTools();
        MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", "src.raw", "d.vhd");
        var info = JsonNode.Parse(q.Img("info", "--output", "json", "d.vhd"))!;
        await using (var image = await ImageOpener.OpenAsync(q.PathOf("d.vhd")))
        {
            Assert.Equal(info["virtual-size"]!.GetValue<long>(), image.Length);
            var footer = ((VpcImage)image).Footer;
            Assert.Equal(footer.GeometrySectors * 512, image.Length);
        }

        // The footer's currentSize, as qemu's force_size_calc=current_size reads it.
        string spec = $"json:{{\"driver\":\"vpc\",\"force_size_calc\":\"current_size\",\"file\":{{\"driver\":\"file\",\"filename\":\"{q.PathOf("d.vhd")}\"}}}}";
        var qemuCurrent = JsonNode.Parse(q.Img("info", "--output", "json", spec))!;
        await using (var image = await ImageOpener.OpenAsync(spec))
        {
            Assert.Equal(qemuCurrent["virtual-size"]!.GetValue<long>(), image.Length);
            Assert.Equal((long)((VpcImage)image).Footer.CurrentSize, image.Length);
        }
    }

    [Theory]
    [InlineData("vpc", "subformat=dynamic")]
    [InlineData("vhdx", "subformat=dynamic")]
    public async Task Qcow2_overlay_backed_by_the_image_over_http_reads_like_qemu_reads_it_locally(string format, string options)
    {
        using var q = new QemuTools();
        MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", format, "-o", options, "src.raw", "base.img");
        q.Img("create", "-f", "qcow2", "-b", "base.img", "-F", format, "local-overlay.qcow2");
        q.Io("-c", "write -P 0x55 1M 1M", "local-overlay.qcow2");
        var expected = q.QemuRaw("local-overlay.qcow2");

        string url = fixture.Server.HttpUrl(fixture.Server.Put($"vhd-overlay/base-{format}.img", File.ReadAllBytes(q.PathOf("base.img"))));
        await Qcow2Creator.CreateAsync(q.PathOf("overlay.qcow2"), expected.Length, new Qcow2CreateOptions { BackingFile = url, BackingFormat = format });
        await using (var image = await ImageOpener.OpenAsync(q.PathOf("overlay.qcow2"), null, new OpenContext { Writable = true }))
        {
            await image.WriteAsync(1 << 20, Enumerable.Repeat((byte)0x55, 1 << 20).ToArray());
        }

        QemuTools.AssertSameBytes(expected, await QemuTools.UrlDiskRawAsync(q.PathOf("overlay.qcow2")));
    }

    [Theory]
    [InlineData("subformat=fixed")]
    [InlineData("subformat=fixed,force_size=on")]
    public async Task Convert_to_fixed_vpc_is_what_qemu_img_writes_and_reads(string options)
    {
        using var q = new QemuTools();
        MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", "vpc", "-o", options, "src.raw", "qemu.vhd");
        var r = await UrlDiskCli.RunAsync("convert", "-f", "raw", "-O", "vpc", "-o", options, q.PathOf("src.raw"), q.PathOf("ours.vhd"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(new FileInfo(q.PathOf("qemu.vhd")).Length, new FileInfo(q.PathOf("ours.vhd")).Length);
        var ours = JsonNode.Parse(q.Img("info", "-f", "vpc", "--output", "json", "ours.vhd"))!;
        var theirs = JsonNode.Parse(q.Img("info", "-f", "vpc", "--output", "json", "qemu.vhd"))!;
        Assert.Equal(theirs["virtual-size"]!.GetValue<long>(), ours["virtual-size"]!.GetValue<long>());
        q.Img("compare", "-f", "vpc", "-F", "vpc", "qemu.vhd", "ours.vhd");
        q.Img("compare", "-f", "raw", "-F", "vpc", "src.raw", "ours.vhd");
        await using var image = await ImageOpener.OpenAsync(q.PathOf("ours.vhd"), "vpc");
        QemuTools.AssertSameBytes(QemuRaw(q, "vpc", "qemu.vhd"), await QemuTools.ReadAllAsync(image));
    }

    [Fact]
    public async Task Cli_info_and_map_agree_with_qemu_img_on_a_dynamic_vhd()
    {
        using var q = new QemuTools();
        MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", "vpc", "src.raw", "d.vhd");
        var r = await UrlDiskCli.RunAsync("info", "--output", "json", q.PathOf("d.vhd"));
        Assert.True(r.ExitCode == 0, r.ToString());
        var ours = JsonNode.Parse(r.Stdout)!;
        var theirs = JsonNode.Parse(q.Img("info", "--output", "json", "d.vhd"))!;
        Assert.Equal("vpc", ours["format"]!.GetValue<string>());
        Assert.Equal(theirs["virtual-size"]!.GetValue<long>(), ours["virtual-size"]!.GetValue<long>());
        var map = await UrlDiskCli.RunAsync("map", "--output", "json", q.PathOf("d.vhd"));
        Assert.True(map.ExitCode == 0, map.ToString());
        Assert.Equal(q.Img("map", "--output", "json", "d.vhd").Trim(), map.Stdout.Trim());
    }

    [Theory]
    [InlineData("vpc", "subformat=dynamic", 64, "vpc: incorrect footer checksum at offset 0")]
    [InlineData("vpc", "subformat=dynamic", 512 + 32, "vpc: dynamic disk header at offset 512: incorrect checksum")]
    [InlineData("vhdx", "subformat=dynamic", (64 * 1024) + 100, "")]
    [InlineData("vhdx", "subformat=dynamic", (192 * 1024) + 100, "")]
    [InlineData("vhdx", "subformat=dynamic", 0, "vhdx: no file identifier")]
    public async Task Malformed_header_gives_a_clear_error_naming_the_structure(string format, string options, int corruptAt, string message)
    {
        using var q = new QemuTools();
        MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", format, "-o", options, "src.raw", "image");
        var bytes = File.ReadAllBytes(q.PathOf("image"));
        if (format == "vhdx" && corruptAt != 0)
        {
            // Both copies of the structure, so no fallback saves the open.
            bytes[corruptAt] ^= 0xFF;
            bytes[corruptAt + (64 * 1024)] ^= 0xFF;
            message = corruptAt < 192 * 1024 ? "vhdx: neither header" : "vhdx: neither region table";
        }
        else
        {
            bytes[corruptAt] ^= 0xFF;
        }

        File.WriteAllBytes(q.PathOf("bad"), bytes);
        var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await (await ImageOpener.OpenAsync(q.PathOf("bad"), format)).DisposeAsync());
        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
        var r = await UrlDiskCli.RunAsync("info", "-f", format, q.PathOf("bad"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(message, r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Vhdx_image_opens_through_its_driver_name_and_reports_no_log_replay()
    {
        using var q = new QemuTools();
        MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", "vhdx", "src.raw", "image.vhdx");
        await using var image = await ImageOpener.OpenAsync($"json:{{\"driver\":\"vhdx\",\"file\":{{\"driver\":\"file\",\"filename\":\"{q.PathOf("image.vhdx")}\"}}}}");
        var vhdx = Assert.IsType<VhdxImage>(image);
        Assert.False(vhdx.LogReplayed);
        Assert.Equal(512u, vhdx.Metadata.LogicalSectorSize);
    }
}
