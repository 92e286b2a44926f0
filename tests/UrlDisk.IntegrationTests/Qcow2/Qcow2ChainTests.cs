using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary>Backing chains: lazy opening, copy-on-read, json: and file: URL names, refcount-table growth.</summary>
public class Qcow2ChainTests
{
    [Fact]
    public async Task Fully_allocated_overlay_reads_without_its_backing_file()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "raw", "base.raw", "2M");
        q.Img("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");
        q.Io("-c", "write -P 0x61 0 2M", "top.qcow2");
        File.Delete(q.PathOf("base.raw"));
        await using var image = await ImageOpener.OpenAsync(q.PathOf("top.qcow2"));
        var all = await QemuTools.ReadAllAsync(image);
        Assert.All(all, b => Assert.Equal(0x61, b));
    }

    [Fact]
    public async Task Copy_on_read_fills_the_overlay_so_the_backing_file_is_not_needed_again()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "raw", "base.raw", "3M");
        q.Io("-f", "raw", "-c", "write -P 0x42 0 1M", "-c", "write -P 0x43 2M 100k", "base.raw");
        var expected = File.ReadAllBytes(q.PathOf("base.raw"));
        await Qcow2Creator.CreateAsync(q.PathOf("top.qcow2"), expected.Length, new Qcow2CreateOptions { BackingFile = "base.raw", BackingFormat = "raw" });
        await using (var image = await ImageOpener.OpenAsync(q.PathOf("top.qcow2"), null, new OpenContext { Writable = true, CopyOnRead = true }))
        {
            // Unaligned reads: whole clusters are copied.
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image, 100_003));
        }

        q.Img("check", "top.qcow2");
        // Zeros became zero clusters, data became data clusters; nothing is left for the backing file.
        string map = q.Img("map", "--output=json", "top.qcow2");
        Assert.DoesNotContain("\"depth\": 1", map, StringComparison.Ordinal);
        File.Delete(q.PathOf("base.raw"));
        QemuTools.AssertSameBytes(expected, await QemuTools.UrlDiskRawAsync(q.PathOf("top.qcow2")));
        long fileSize = new FileInfo(q.PathOf("top.qcow2")).Length;
        Assert.True(fileSize < 2L << 20, $"zero clusters should not take space ({fileSize} bytes)");
    }

    [Fact]
    public async Task Json_and_file_url_backing_names_are_opened()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "raw", "base.raw", "1M");
        q.Io("-f", "raw", "-c", "write -P 0x71 0 1M", "base.raw");
        string json = "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"" + q.PathOf("base.raw") + "\"}}";
        await Qcow2Creator.CreateAsync(q.PathOf("j.qcow2"), 1 << 20, new Qcow2CreateOptions { BackingFile = json, BackingFormat = "raw" });
        Assert.All(await QemuTools.UrlDiskRawAsync(q.PathOf("j.qcow2")), b => Assert.Equal(0x71, b));
        QemuTools.AssertSameBytes(q.QemuRaw("j.qcow2"), await QemuTools.UrlDiskRawAsync(q.PathOf("j.qcow2")));

        // An overlay opened by file: URL resolves a relative backing name against that URL.
        Directory.CreateDirectory(q.PathOf("sub"));
        File.Move(q.PathOf("base.raw"), q.PathOf("sub/base.raw"));
        await Qcow2Creator.CreateAsync(q.PathOf("sub/top.qcow2"), 1 << 20, new Qcow2CreateOptions { BackingFile = "base.raw", BackingFormat = "raw" });
        var url = new Uri(q.PathOf("sub/top.qcow2")).AbsoluteUri;
        await using var image = await ImageOpener.OpenAsync(url);
        Assert.Equal(url[..url.LastIndexOf('/')] + "/base.raw", ((Qcow2Image)image).BackingLocation);
        Assert.All(await QemuTools.ReadAllAsync(image), b => Assert.Equal(0x71, b));
    }

    [Fact]
    public async Task Refcount_table_grows_when_the_image_outgrows_it()
    {
        using var q = new QemuTools();
        // 512-byte clusters: one refcount block covers 128 KiB and a one-cluster table 8 MiB.
        long size = 24L << 20;
        var data = new byte[size];
        new Random(5).NextBytes(data);
        await using (var image = await Qcow2Creator.CreateAndOpenAsync(q.PathOf("grow.qcow2"), size, Qcow2CreateOptions.Parse("cluster_size=512")))
        {
            for (long pos = 0; pos < size; pos += 1 << 20)
            {
                await image.WriteAsync(pos, data.AsMemory((int)pos, 1 << 20));
            }

            Assert.True(image.Header.RefcountTableClusters > 1);
        }

        q.Img("check", "grow.qcow2");
        await File.WriteAllBytesAsync(q.PathOf("expected.raw"), data);
        q.Img("compare", "-f", "qcow2", "-F", "raw", "grow.qcow2", "expected.raw");
    }

    [Fact]
    public async Task Three_deep_chain_extents_report_depth_and_host_offsets_like_qemu_map()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "a.qcow2", "2M");
        q.Io("-c", "write -P 1 0 256k", "a.qcow2");
        q.Img("create", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", "b.qcow2");
        q.Io("-c", "write -P 2 512k 128k", "b.qcow2");
        q.Img("create", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", "c.qcow2");
        q.Io("-c", "write -P 3 1M 64k", "c.qcow2");
        await using var image = await ImageOpener.OpenAsync(q.PathOf("c.qcow2"));
        var extents = await image.GetExtentsAsync(0, image.Length);
        Assert.Contains(extents, e => e.Offset == 0 && e.Depth == 2 && !e.IsHole && e.HostOffset is not null);
        Assert.Contains(extents, e => e.Offset == 512 * 1024 && e.Depth == 1 && !e.IsHole);
        Assert.Contains(extents, e => e.Offset == 1 << 20 && e.Depth == 0 && !e.IsHole);
        Assert.Contains(extents, e => e.IsHole && e.Depth == 2);
    }
}
