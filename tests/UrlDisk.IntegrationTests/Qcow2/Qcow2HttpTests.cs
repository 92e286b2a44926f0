using UrlDisk.Formats.Qcow2;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary>qcow2 chains served by nginx: relative backing names resolve against the URL, metadata costs few requests.</summary>
public class Qcow2HttpTests
{
    private static void MakeChain(QemuTools q)
    {
        q.Img("create", "-f", "raw", "base.raw", "8M");
        q.Io("-f", "raw", "-c", "write -P 0x11 0 3M", "-c", "write -P 0x22 5M 1M", "base.raw");
        Directory.CreateDirectory(q.PathOf("dir/lower"));
        q.Img("convert", "-c", "-O", "qcow2", "base.raw", "dir/lower/base.qcow2");
        q.Img("create", "-f", "qcow2", "-b", "lower/base.qcow2", "-F", "qcow2", "dir/mid.qcow2");
        q.Io("-c", "write -P 0x33 1M 1M", "-c", "write -z 5M 64k", "dir/mid.qcow2");
        q.Img("create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "dir/top.qcow2");
        q.Io("-c", "write -P 0x44 1500k 100k", "dir/top.qcow2");
    }

    [Fact]
    public async Task Three_deep_chain_over_http_reads_like_qemu_with_few_requests()
    {
        using var q = new QemuTools();
        MakeChain(q);
        await using var nginx = await NginxServer.StartAsync();
        foreach (var f in new[] { "dir/top.qcow2", "dir/mid.qcow2", "dir/lower/base.qcow2" })
        {
            nginx.Put("chain/" + f, File.ReadAllBytes(q.PathOf(f)));
        }

        var expected = q.QemuRaw("dir/top.qcow2");
        string url = nginx.HttpUrl("/chain/dir/top.qcow2");
        await using (var image = await ImageOpener.OpenAsync(url))
        {
            Assert.Equal(nginx.HttpUrl("/chain/dir/mid.qcow2"), ((Qcow2Image)image).BackingLocation);
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image));
        }

        var requests = await nginx.SettledRequestsAsync("/chain/");
        Assert.Contains(requests, r => r.Uri.EndsWith("/chain/dir/lower/base.qcow2", StringComparison.Ordinal));
        // 8 MiB read in 1 MiB pieces through three images: header, L1, one L2 table per image plus data, not one request per cluster.
        Assert.True(requests.Count < 60, $"{requests.Count} requests");
    }

    [Fact]
    public async Task Local_overlay_warmed_by_copy_on_read_works_with_the_server_gone()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "raw", "base.raw", "4M");
        q.Io("-f", "raw", "-c", "write -P 0x5a 0 2M", "base.raw");
        var expected = File.ReadAllBytes(q.PathOf("base.raw"));
        var nginx = await NginxServer.StartAsync();
        string url;
        try
        {
            url = nginx.HttpUrl(nginx.Put("cor/base.raw", expected));
            await Qcow2Creator.CreateAsync(q.PathOf("overlay.qcow2"), expected.Length, new Qcow2CreateOptions { BackingFile = url, BackingFormat = "raw" });
            await using var image = await ImageOpener.OpenAsync(q.PathOf("overlay.qcow2"), null, new OpenContext { Writable = true, CopyOnRead = true });
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image));
        }
        finally
        {
            await nginx.DisposeAsync();
        }

        // The server is gone: the overlay has everything, and the backing file is never opened.
        await using (var image = await ImageOpener.OpenAsync(q.PathOf("overlay.qcow2")))
        {
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image));
        }

        // qemu would open the (gone) backing file; check the overlay on its own.
        q.Img("check", "json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":\"overlay.qcow2\"}}");
    }

    /// <summary>
    /// A copy-on-read pass as a plain reader does it (every byte read) or as a sparse-aware client does
    /// (qemu-img convert or nbdcopy over NBD: block status first, then only the data extents are read).
    /// </summary>
    [Theory]
    [InlineData("qcow2", "", false)]
    [InlineData("qcow2", "", true)]
    [InlineData("qcow2", "cluster_size=4096", true)]
    [InlineData("qcow2", "extended_l2=on", true)]
    [InlineData("raw", "", true)]
    public async Task Overlay_read_end_to_end_by_copy_on_read_opens_without_the_server_even_over_holes_and_zeros(string baseFormat, string overlayOptions, bool sparseAware)
    {
        using var q = new QemuTools();
        // A backing file with data, zero clusters, holes and an unaligned, shorter tail.
        q.Img("create", "-f", "qcow2", "base.qcow2", "6M");
        q.Io("-c", "write -P 0x61 0 1M", "-c", "write -z 1M 1M", "-c", "write -P 0x62 3M 100k", "-c", "write -z 4M 64k", "-c", "write -P 0x63 5M 32k", "base.qcow2");
        if (baseFormat == "raw")
        {
            q.Img("convert", "-O", "raw", "base.qcow2", "base.raw");
        }

        var expected = q.QemuRaw("base.qcow2");
        Array.Resize(ref expected, 7 << 20);
        var nginx = await NginxServer.StartAsync();
        try
        {
            string url = nginx.HttpUrl(nginx.Put("cor2/base." + baseFormat, File.ReadAllBytes(q.PathOf("base." + baseFormat))));
            await Qcow2Creator.CreateAsync(q.PathOf("overlay.qcow2"), expected.Length, Qcow2CreateOptions.Parse(overlayOptions) with { BackingFile = url, BackingFormat = baseFormat });
            await using (var image = await ImageOpener.OpenAsync(q.PathOf("overlay.qcow2"), null, new OpenContext { Writable = true, CopyOnRead = true }))
            {
                QemuTools.AssertSameBytes(expected, sparseAware ? await ReadDataExtentsAsync(image) : await QemuTools.ReadAllAsync(image, 300_000));
            }

            // Reading again needs nothing from the server: not even the backing file's HEAD.
            int before = (await nginx.SettledRequestsAsync("/cor2/")).Count;
            await using (var image = await ImageOpener.OpenAsync(q.PathOf("overlay.qcow2"), null, new OpenContext { Writable = true, CopyOnRead = true }))
            {
                QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image));
            }

            Assert.Equal(before, (await nginx.SettledRequestsAsync("/cor2/")).Count);
        }
        finally
        {
            await nginx.DisposeAsync();
        }

        // The server is gone: the overlay is complete on its own.
        await using (var image = await ImageOpener.OpenAsync(q.PathOf("overlay.qcow2")))
        {
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image));
        }

        q.Img("check", "json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":\"overlay.qcow2\"}}");
    }

    /// <summary>Reads what block status calls data (in pieces of at most 1 MiB); the rest is left zero.</summary>
    private static async Task<byte[]> ReadDataExtentsAsync(IBlockDevice image)
    {
        var all = new byte[image.Length];
        for (long pos = 0; pos < all.Length;)
        {
            foreach (var e in await image.GetExtentsAsync(pos, Math.Min(all.Length - pos, 2 << 20)))
            {
                for (long p = e.Offset; (e.Flags & ExtentFlags.Zero) == 0 && p < e.End; p += 1 << 20)
                {
                    int n = (int)Math.Min(1 << 20, e.End - p);
                    await image.ReadAsync(p, all.AsMemory((int)p, n));
                }

                pos = e.End;
            }
        }

        return all;
    }

    [Fact]
    public async Task Remote_image_naming_a_local_backing_file_is_refused()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", "-u", "evil.qcow2", "1M");
        await using var nginx = await NginxServer.StartAsync();
        string url = nginx.HttpUrl(nginx.Put("evil/evil.qcow2", File.ReadAllBytes(q.PathOf("evil.qcow2"))));
        var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await ImageOpener.OpenAsync(url));
        Assert.Contains("local backing file", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Prefetch_through_the_chain_makes_later_reads_free()
    {
        using var q = new QemuTools();
        MakeChain(q);
        await using var nginx = await NginxServer.StartAsync();
        foreach (var f in new[] { "dir/top.qcow2", "dir/mid.qcow2", "dir/lower/base.qcow2" })
        {
            nginx.Put("pf/" + f, File.ReadAllBytes(q.PathOf(f)));
        }

        var expected = q.QemuRaw("dir/top.qcow2");
        await using var image = await ImageOpener.OpenAsync(nginx.HttpUrl("/pf/dir/top.qcow2"));
        await image.PrefetchAsync(0, image.Length);
        int before = (await nginx.SettledRequestsAsync("/pf/")).Count;
        QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image));
        Assert.Equal(before, (await nginx.SettledRequestsAsync("/pf/")).Count);
    }
}
