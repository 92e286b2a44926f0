using System.Text.Json.Nodes;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Formats.Vmdk;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Vmdk;

/// <summary>vmdk and vdi images made by qemu-img, read locally and over nginx, as qemu-img reads them.</summary>
public class FormatReadTests(NginxFixture nginx) : IClassFixture<NginxFixture>
{
    [Theory]
    [MemberData(nameof(FormatImages.Kinds), MemberType = typeof(FormatImages))]
    public async Task Image_reads_byte_for_byte_locally_and_over_http_with_holes_reported(string format, string options)
    {
        using var q = new QemuTools();
        var expected = FormatImages.MakeSource(q);
        var files = FormatImages.Convert(q, format, options, "disk." + format);

        await using (var local = await ImageOpener.OpenAsync(q.PathOf(files[0])))
        {
            Assert.Equal(format, local.Info.Driver);
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(local, 100_000));
        }

        string dir = $"read-{Guid.NewGuid():N}/";
        foreach (var f in files)
        {
            nginx.Server.Put(dir + f, File.ReadAllBytes(q.PathOf(f)));
        }

        await using var remote = await ImageOpener.OpenAsync(nginx.Server.HttpUrl("/" + dir + files[0]));
        Assert.Equal(format, remote.Info.Driver);
        QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(remote));

        // Allocation: the zeros between 2 MiB and 4 MiB are not data, the written ranges are.
        var extents = await remote.GetExtentsAsync(0, remote.Length);
        Assert.Equal(remote.Length, extents.Sum(e => e.Length));
        Assert.Contains(extents, e => !e.IsZero && e.Offset <= 0 && e.End >= 1 << 20);
        bool flat = options.Contains("Flat", StringComparison.Ordinal) || options.Contains("static=on", StringComparison.Ordinal);
        if (!flat)
        {
            Assert.Contains(extents, e => e.IsZero && e.Offset <= 2 << 20 && e.End >= 4 << 20);
        }
    }

    [Theory]
    [MemberData(nameof(FormatImages.Kinds), MemberType = typeof(FormatImages))]
    public async Task Qcow2_overlay_over_http_backed_by_the_image_reads_like_qemu(string format, string options)
    {
        using var q = new QemuTools();
        var source = FormatImages.MakeSource(q);
        var files = FormatImages.Convert(q, format, options, "base." + format);
        string dir = $"overlay-{Guid.NewGuid():N}/";
        foreach (var f in files)
        {
            nginx.Server.Put(dir + f, File.ReadAllBytes(q.PathOf(f)));
        }

        string url = nginx.Server.HttpUrl("/" + dir + files[0]);
        await Qcow2Creator.CreateAsync(q.PathOf("overlay.qcow2"), source.Length, new Qcow2CreateOptions { BackingFile = url, BackingFormat = format });
        await using (var overlay = await ImageOpener.OpenAsync(q.PathOf("overlay.qcow2"), null, new OpenContext { Writable = true }))
        {
            await overlay.WriteAsync(1 << 20, new byte[4096].Select(_ => (byte)0x99).ToArray());
        }

        var expected = (byte[])source.Clone();
        expected.AsSpan(1 << 20, 4096).Fill(0x99);
        QemuTools.AssertSameBytes(expected, await QemuTools.UrlDiskRawAsync(q.PathOf("overlay.qcow2")));

        // qemu cannot follow a descriptor's extents over http: it checks the overlay itself.
        q.Img("check", "json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":\"overlay.qcow2\"}}");
    }

    [Theory]
    [InlineData("subformat=monolithicSparse")]
    [InlineData("subformat=streamOptimized")]
    [InlineData("subformat=monolithicFlat")]
    [InlineData("subformat=twoGbMaxExtentSparse")]
    public async Task Info_has_qemu_img_s_vmdk_keys(string options)
    {
        using var q = new QemuTools();
        FormatImages.MakeSource(q);
        var files = FormatImages.Convert(q, "vmdk", options, "disk.vmdk");
        var theirs = JsonNode.Parse(q.Img("info", "--output", "json", files[0]))!;
        var result = await UrlDiskCli.RunAsync("info", "--output", "json", q.PathOf(files[0]));
        Assert.True(result.ExitCode == 0, result.ToString());
        var ours = JsonNode.Parse(result.Stdout)!;

        Assert.Equal(theirs["virtual-size"]!.GetValue<long>(), ours["virtual-size"]!.GetValue<long>());
        Assert.Equal("vmdk", ours["format"]!.GetValue<string>());
        var data = theirs["format-specific"]!["data"]!;
        var mine = ours["format-specific"]!["data"]!;
        foreach (var key in new[] { "cid", "parent-cid" })
        {
            Assert.Equal(data[key]!.GetValue<long>(), mine[key]!.GetValue<long>());
        }

        Assert.Equal(data["create-type"]!.GetValue<string>(), mine["create-type"]!.GetValue<string>());
        var theirExtents = data["extents"]!.AsArray();
        var myExtents = mine["extents"]!.AsArray();
        Assert.Equal(theirExtents.Count, myExtents.Count);
        for (int i = 0; i < theirExtents.Count; i++)
        {
            foreach (var (key, value) in theirExtents[i]!.AsObject())
            {
                string theirValue = key == "filename" ? Path.GetFileName(value!.ToString()) : value!.ToJsonString();
                string myValue = key == "filename" ? Path.GetFileName(myExtents[i]![key]!.ToString()) : myExtents[i]![key]?.ToJsonString() ?? "(missing)";
                Assert.True(theirValue == myValue, $"extent {i} key {key}: qemu-img {theirValue}, urldisk {myValue}");
            }
        }
    }

    [Fact]
    public async Task Split_extents_past_two_gigabytes_read_across_the_boundary()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "raw", "big.raw", "2049M");
        q.Io("-f", "raw", "-c", "write -P 0x5a 2047M 2M", "big.raw");
        foreach (var sub in new[] { "twoGbMaxExtentSparse", "twoGbMaxExtentFlat" })
        {
            q.Img("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=" + sub, "big.raw", sub + ".vmdk");
            await using var image = await ImageOpener.OpenAsync(q.PathOf(sub + ".vmdk"));
            var vmdk = Assert.IsType<VmdkImage>(image);
            Assert.Equal(2, vmdk.Descriptor!.Extents.Count);
            var buffer = new byte[3 << 20];
            await image.ReadAsync(2046L << 20, buffer);
            Assert.True(buffer.AsSpan(0, 1 << 20).IndexOfAnyExcept((byte)0) < 0, sub);
            Assert.True(buffer.AsSpan(1 << 20).IndexOfAnyExcept((byte)0x5a) < 0, sub);
        }
    }

    [Fact]
    public async Task Vsphere_descriptor_and_flat_pair_over_https_keeps_the_query_and_the_tls_options()
    {
        using var q = new QemuTools();
        var expected = FormatImages.MakeSource(q);
        string dir = $"folder-{Guid.NewGuid():N}/test/";
        nginx.Server.Put(dir + "test-flat.vmdk", expected);
        string descriptor = $"""
            # Disk DescriptorFile
            version=1
            encoding="UTF-8"
            CID=fffffffe
            parentCID=ffffffff
            createType="vmfs"

            # Extent description
            RW {expected.Length / 512} VMFS "test-flat.vmdk"

            # The Disk Data Base
            #DDB

            ddb.adapterType = "lsilogic"
            ddb.thinProvisioned = "1"
            ddb.virtualHWVersion = "13"
            """;
        nginx.Server.Put(dir + "test.vmdk", System.Text.Encoding.UTF8.GetBytes(descriptor));
        string url = nginx.Server.HttpsUrl("/" + dir + "test.vmdk") + "?dcPath=Datacenter&dsName=datastore1";
        string spec = "json:" + new JsonObject { ["file.driver"] = "https", ["file.url"] = url, ["file.sslverify"] = "off" }.ToJsonString();

        await using (var image = await ImageOpener.OpenAsync(spec))
        {
            Assert.Equal("vmdk", image.Info.Driver);
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image));
        }

        var requests = await nginx.Server.SettledRequestsAsync(dir + "test-flat.vmdk");
        Assert.NotEmpty(requests);
        Assert.All(requests, r => Assert.EndsWith("test-flat.vmdk?dcPath=Datacenter&dsName=datastore1", r.Uri, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Differencing_vmdk_reads_its_parent_where_it_has_no_grain()
    {
        using var q = new QemuTools();
        FormatImages.MakeSource(q);
        q.Img("convert", "-f", "raw", "-O", "vmdk", "base.raw", "parent.vmdk");
        q.Img("create", "-f", "vmdk", "-b", "parent.vmdk", "-F", "vmdk", "child.vmdk");
        q.Io("-f", "vmdk", "-c", "write -P 0x77 1M 64k", "-c", "write -P 0x78 5M 4k", "child.vmdk");
        var expected = q.QemuRaw("child.vmdk");

        await using var image = await ImageOpener.OpenAsync(q.PathOf("child.vmdk"));
        Assert.Equal(q.PathOf("parent.vmdk"), ((VmdkImage)image).BackingLocation);
        QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image, 300_000));
        var extents = await image.GetExtentsAsync(0, image.Length);
        Assert.Contains(extents, e => e.Depth == 0 && !e.IsHole && e.Offset <= 1 << 20 && e.End >= (1 << 20) + 65536);
        Assert.Contains(extents, e => e.Depth == 1 && !e.IsZero && e.Offset == 0);
    }
}
