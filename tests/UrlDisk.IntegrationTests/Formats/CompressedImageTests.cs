using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;
using UrlDisk.Layers.Compressed;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Formats;

/// <summary>Images compressed with xz, gzip and zstd, read through the decompressing layer over http and locally.</summary>
public sealed class CompressedImageTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    [Theory]
    [InlineData("raw", "xz", "--block-size=1MiB", "xz")]
    [InlineData("qcow2", "xz", "--block-size=1MiB", "xz")]
    [InlineData("vpc", "xz", "--block-size=1MiB", "xz")]
    [InlineData("raw", "xz", "", "fill")]
    [InlineData("qcow2", "xz", "", "fill")]
    [InlineData("raw", "gzip", "", "fill")]
    [InlineData("qcow2", "gzip", "", "fill")]
    [InlineData("raw", "zstd", "", "fill")]
    [InlineData("qcow2", "zstd", "", "fill")]
    public async Task Compressed_image_is_probed_by_its_decompressed_bytes_and_reads_like_the_source(string format, string tool, string toolOption, string layer)
    {
        using var q = new QemuTools();
        VhdFormatsTests.MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", format, "src.raw", "image");
        var expected = q.QemuRaw("image");
        var args = new List<string> { "-k", "-f" };
        if (tool == "xz")
        {
            args.Add("-T1");
        }

        if (toolOption.Length > 0)
        {
            args.Add(toolOption);
        }

        args.Add("image");
        q.Run(tool, [.. args]);
        string ext = tool switch { "gzip" => ".gz", "zstd" => ".zst", _ => ".xz" };
        string url = fixture.Server.HttpUrl(fixture.Server.Put($"compressed/{format}-{tool}-{layer}{ext}", File.ReadAllBytes(q.PathOf("image" + ext))));
        foreach (string spec in new[] { url, q.PathOf("image" + ext) })
        {
            await using var image = await ImageOpener.OpenAsync(spec);
            Assert.Equal(format, image.Info.Driver);
            var below = image.Info.Child!;
            Assert.Equal(layer == "xz" ? "xz" : tool, below.Info.Driver);
            if (layer == "xz")
            {
                Assert.True(((XzBlockDevice)below).BlockCount > 2);
            }

            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image, 200_000));
        }
    }

    [Theory]
    [InlineData("qcow2", "--block-size=1MiB")]
    [InlineData("vpc", "")]
    public async Task Qcow2_overlay_backed_by_a_compressed_image_named_with_its_format_reads_like_the_source(string format, string xzOption)
    {
        using var q = new QemuTools();
        VhdFormatsTests.MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", format, "src.raw", "base");
        var expected = q.QemuRaw("base");
        q.Run("xz", xzOption.Length > 0 ? ["-k", "-T1", xzOption, "base"] : ["-k", "-T1", "base"]);
        string url = fixture.Server.HttpUrl(fixture.Server.Put($"compressed/backing-{format}.xz", File.ReadAllBytes(q.PathOf("base.xz"))));
        await UrlDisk.Formats.Qcow2.Qcow2Creator.CreateAsync(q.PathOf("overlay.qcow2"), expected.Length, new UrlDisk.Formats.Qcow2.Qcow2CreateOptions { BackingFile = url, BackingFormat = format });
        QemuTools.AssertSameBytes(expected, await QemuTools.UrlDiskRawAsync(q.PathOf("overlay.qcow2")));

        // -f raw still means the file's own bytes.
        await using var raw = await ImageOpener.OpenAsync(q.PathOf("base.xz"), "raw");
        Assert.Equal(new FileInfo(q.PathOf("base.xz")).Length, raw.Length);
    }

    [Fact]
    public async Task Convert_of_an_xz_url_writes_the_decompressed_image()
    {
        using var q = new QemuTools();
        VhdFormatsTests.MakeSource(q);
        q.Run("xz", ["-k", "-T1", "--block-size=1MiB", "src.raw"]);
        string url = fixture.Server.HttpUrl(fixture.Server.Put("compressed/convert.raw.xz", File.ReadAllBytes(q.PathOf("src.raw.xz"))));
        var r = await UrlDiskCli.RunAsync("convert", "-O", "qcow2", url, q.PathOf("out.qcow2"));
        Assert.True(r.ExitCode == 0, r.ToString());
        q.Img("compare", "-f", "raw", "-F", "qcow2", "src.raw", "out.qcow2");
    }

    [Theory]
    [InlineData(-8, "xz: stream footer at offset")]
    [InlineData(-20, "xz: index at offset")]
    [InlineData(8, "xz: stream header at offset 0")]
    public async Task Malformed_xz_gives_a_clear_error_naming_the_structure(int corruptAt, string message)
    {
        using var q = new QemuTools();
        VhdFormatsTests.MakeSource(q);
        q.Run("xz", ["-k", "-T1", "--block-size=1MiB", "src.raw"]);
        var bytes = File.ReadAllBytes(q.PathOf("src.raw.xz"));
        bytes[corruptAt < 0 ? bytes.Length + corruptAt : corruptAt] ^= 0x5A;
        File.WriteAllBytes(q.PathOf("bad.xz"), bytes);
        var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await (await ImageOpener.OpenAsync(q.PathOf("bad.xz"))).DisposeAsync());
        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Corrupt_xz_block_fails_that_read_with_its_offset_and_others_still_read()
    {
        using var q = new QemuTools();
        VhdFormatsTests.MakeSource(q);
        q.Run("xz", ["-k", "-T1", "--block-size=1MiB", "src.raw"]);
        var bytes = File.ReadAllBytes(q.PathOf("src.raw.xz"));
        IReadOnlyList<XzBlock> blocks;
        await using (var file = await ImageOpener.OpenAsync(q.PathOf("src.raw.xz"), "raw"))
        {
            blocks = await XzLayout.ReadAsync(file, CancellationToken.None);
        }

        var third = blocks.Single(b => b.UncompressedOffset == 3 << 20);
        bytes[third.FileOffset + 20] ^= 0x01; // inside the block's compressed data
        File.WriteAllBytes(q.PathOf("bad.xz"), bytes);
        await using var image = await ImageOpener.OpenAsync(q.PathOf("bad.xz"));
        var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await image.ReadAsync(3 << 20, new byte[4096]));
        Assert.StartsWith($"xz: block at offset {third.FileOffset}", e.Message, StringComparison.Ordinal);
        var head = new byte[4096];
        await image.ReadAsync(0, head);
        Assert.All(head, b => Assert.Equal(0x11, b));
        var tail = new byte[3072];
        await image.ReadAsync(11 << 20, tail);
        Assert.All(tail, b => Assert.Equal(0x44, b));
    }
}
