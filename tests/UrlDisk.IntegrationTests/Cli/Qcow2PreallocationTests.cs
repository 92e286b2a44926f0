using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;
using static UrlDisk.IntegrationTests.Cli.QemuImgParity;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>
/// qcow2 <c>-o preallocation=metadata|falloc|full</c> (create, convert) and <c>resize --preallocation</c>, run through
/// qemu-img 7.2 and urldisk with the same arguments: qemu-img map (offsets included) equal, qemu-img check clean,
/// the image reads zeros (or the source's data) and takes writes.
/// </summary>
public sealed class Qcow2PreallocationTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    private static async Task<string> MapAsync(string image) => (await QemuImgOkAsync("map", "--output", "json", image)).Stdout;

    /// <summary>The guest bytes from <paramref name="from"/> on that qemu-img map shows as not mapped to a host cluster.</summary>
    private static async Task<long> UnmappedFromAsync(string image, long from)
    {
        long unmapped = 0;
        foreach (var e in JsonNode.Parse(await MapAsync(image))!.AsArray())
        {
            long start = (long)e!["start"]!, end = start + (long)e["length"]!;
            if (end > from && !(bool)e["data"]!)
            {
                unmapped += end - Math.Max(start, from);
            }
        }

        return unmapped;
    }

    /// <summary>qemu-io commands that must all succeed without a pattern mismatch.</summary>
    private static async Task<string> QemuIoCheckedAsync(string image, params string[] commands)
    {
        var args = new List<string>();
        foreach (string c in commands)
        {
            args.Add("-c");
            args.Add(c);
        }

        args.Add(image);
        var r = await ProcessRunner.RunAsync(ProcessRunner.RequireTool("qemu-io", "qemu-utils"), args);
        Assert.True(r.ExitCode == 0 && !r.Stdout.Contains("fail", StringComparison.OrdinalIgnoreCase) && !r.Stderr.Contains("fail", StringComparison.OrdinalIgnoreCase), r.ToString());
        return r.Stdout;
    }

    [Theory]
    [InlineData("metadata", "659968", "")] // not a multiple of the cluster size: qemu's zeroed cluster tail
    [InlineData("metadata", "8M", "compat=0.10")]
    [InlineData("metadata", "3G", "refcount_bits=64")] // refcount blocks placed between the data runs
    [InlineData("metadata", "1000000000", "cluster_size=4k")]
    [InlineData("metadata", "659968", "extended_l2=on")]
    [InlineData("metadata", "659968", "cluster_size=2M")]
    [InlineData("metadata", "100M", "refcount_bits=1,cluster_size=16k")]
    [InlineData("falloc", "659968", "refcount_bits=1")]
    [InlineData("falloc", "40M", "cluster_size=32k,lazy_refcounts=on")]
    [InlineData("falloc", "5M", "extended_l2=on,refcount_bits=64")]
    [InlineData("full", "659968", "")]
    [InlineData("full", "20M", "compat=0.10")]
    public async Task Create_lays_out_the_image_as_qemu_img(string mode, string size, string options)
    {
        using var temp = new TempDir("urldisk-prealloc");
        string o = options.Length == 0 ? $"preallocation={mode}" : $"preallocation={mode},{options}";
        string q = temp.File("q.qcow2");
        string u = temp.File("u.qcow2");
        var qr = await QemuImgOkAsync("create", "-f", "qcow2", "-o", o, q, size);
        var ur = await UrlDiskOkAsync("create", "-f", "qcow2", "-o", o, u, size);
        Assert.StartsWith($"Formatting '{u}', fmt=qcow2 ", ur.Stdout, StringComparison.Ordinal);
        Assert.Contains($" preallocation={mode} ", qr.Stdout, StringComparison.Ordinal);
        Assert.Contains($" preallocation={mode} ", ur.Stdout, StringComparison.Ordinal);

        await CheckCleanAsync(u);
        Assert.Equal(await MapAsync(q), await MapAsync(u));
        Assert.Equal(new FileInfo(q).Length, new FileInfo(u).Length);
        if (mode != "metadata")
        {
            // falloc and full: the data area is really allocated, as qemu-img's.
            Assert.True(await AllocatedAsync(u) >= await AllocatedAsync(q) - (4L << 20), $"{await AllocatedAsync(u)} bytes allocated, qemu-img {await AllocatedAsync(q)}");
        }

        long bytes = long.Parse((await QemuImgOkAsync("info", "--output", "json", u)).Stdout.Split("\"virtual-size\": ")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture);
        long head = Math.Min(bytes, 1L << 30); // qemu-io reads at most 2 GiB at once
        await QemuIoCheckedAsync(u, $"read -P 0 0 {head}", $"read -P 0 {bytes - head} {head}", "write -P 7 0 4k", $"write -P 8 {bytes - 512} 512", "read -P 7 0 4k", $"read -P 8 {bytes - 512} 512");
        await CheckCleanAsync(u);
    }

    [Fact]
    public async Task Backing_file_with_preallocation_needs_extended_l2_as_qemu_img_says()
    {
        using var temp = new TempDir("urldisk-prealloc");
        string baseRaw = temp.File("base.raw");
        await File.WriteAllBytesAsync(baseRaw, ImageFactory.Random(1 << 20, 5));

        var q = await QemuImg.RunAsync("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "-o", "preallocation=metadata", temp.File("q.qcow2"));
        var u = await UrlDiskCli.RunAsync("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "-o", "preallocation=metadata", temp.File("u.qcow2"));
        Assert.NotEqual(0, q.ExitCode);
        Assert.True(u.ExitCode == 1, u.ToString());
        Assert.Contains("Backing file and preallocation can only be used at the same time if extended_l2 is on", u.Stderr, StringComparison.Ordinal);
        Assert.Contains("Backing file and preallocation can only be used at the same time if extended_l2 is on", q.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(temp.File("u.qcow2")));

        // With extended L2 the clusters are mapped but no subcluster is allocated: the backing file shows through.
        await QemuImgOkAsync("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "-o", "preallocation=metadata,extended_l2=on", temp.File("q2.qcow2"));
        await UrlDiskOkAsync("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "-o", "preallocation=metadata,extended_l2=on", temp.File("u2.qcow2"));
        await CheckCleanAsync(temp.File("u2.qcow2"));
        Assert.Equal(await MapAsync(temp.File("q2.qcow2")), await MapAsync(temp.File("u2.qcow2")));
        await SameContentAsync(baseRaw, temp.File("u2.qcow2"));
        await SameBytesAsync(temp.File("q2.qcow2"), temp.File("u2.qcow2"));
    }

    [Theory]
    [InlineData("metadata")]
    [InlineData("falloc")]
    [InlineData("full")]
    public async Task Convert_from_http_writes_into_the_preallocated_clusters_as_qemu_img(string mode)
    {
        using var temp = new TempDir("urldisk-prealloc");

        // Data, a hole, more data and a partial last cluster.
        byte[] source = new byte[(6 << 20) + 4096];
        ImageFactory.Random(300_000, 11).CopyTo(source, 0);
        ImageFactory.Random(70_000, 12).CopyTo(source, 4 << 20);
        source[^1] = 0x5A;
        string local = temp.File("src.raw");
        await File.WriteAllBytesAsync(local, source);
        string url = fixture.Server.HttpUrl(fixture.Server.PutSparse($"prealloc-{Guid.NewGuid():N}/src.raw", source));

        string q = temp.File("q.qcow2");
        string u = temp.File("u.qcow2");
        await QemuImgOkAsync("convert", "-O", "qcow2", "-o", $"preallocation={mode}", local, q);
        await UrlDiskOkAsync("convert", "-O", "qcow2", "-o", $"preallocation={mode}", url, u);
        await CheckCleanAsync(u);
        await SameContentAsync(local, u);
        Assert.Equal(await MapAsync(q), await MapAsync(u));
        Assert.Equal(new FileInfo(q).Length, new FileInfo(u).Length);

        var c = await UrlDiskCli.RunAsync("convert", "-c", "-O", "qcow2", "-o", $"preallocation={mode}", url, temp.File("c.qcow2"));
        Assert.True(c.ExitCode == 1, c.ToString());
        Assert.Contains("Compression and preallocation", c.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(temp.File("c.qcow2")));
    }

    [Theory]
    [InlineData("metadata")]
    [InlineData("falloc")]
    [InlineData("full")]
    public async Task Resize_growth_maps_the_new_area_as_qemu_img(string mode)
    {
        using var temp = new TempDir("urldisk-prealloc");
        string q = temp.File("q.qcow2");
        string u = temp.File("u.qcow2");
        await QemuImgOkAsync("create", "-q", "-f", "qcow2", q, "1000448");
        await QemuIoCheckedAsync(q, "write -P 1 0 4k", "write -P 2 900k 4k");
        File.Copy(q, u);

        await QemuImgOkAsync("resize", "-q", $"--preallocation={mode}", q, "5000192");
        var r = await UrlDiskOkAsync("resize", $"--preallocation={mode}", u, "5000192");
        Assert.Equal("Image resized.\n", r.Stdout);
        await CheckCleanAsync(u);
        await SameContentAsync(q, u);
        // Every guest cluster of the new area is mapped, in both (the host offsets differ: qemu-img also moves its
        // refcount table, and copies the head of a partial last cluster rather than zeroing it).
        Assert.Equal(0, await UnmappedFromAsync(q, 983040));
        Assert.Equal(0, await UnmappedFromAsync(u, 983040));
        if (mode != "metadata")
        {
            Assert.True(await AllocatedAsync(u) >= 4_000_000, $"only {await AllocatedAsync(u)} bytes allocated");
        }

        await QemuIoCheckedAsync(u, "read -P 1 0 4k", "read -P 2 900k 4k", "read -P 0 1000448 3999744", "write -P 3 4M 64k", "read -P 3 4M 64k");
        await CheckCleanAsync(u);

        // Shrinking with preallocation is refused, as qemu-img refuses it.
        var s = await UrlDiskCli.RunAsync("resize", "--shrink", $"--preallocation={mode}", u, "1M");
        Assert.True(s.ExitCode == 1, s.ToString());
    }

    [Fact]
    public async Task Resize_with_a_backing_file_needs_extended_l2()
    {
        using var temp = new TempDir("urldisk-prealloc");
        await QemuImgOkAsync("create", "-q", "-f", "raw", temp.File("base.raw"), "1M");
        await QemuImgOkAsync("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", temp.File("u.qcow2"), "1M");
        byte[] before = await File.ReadAllBytesAsync(temp.File("u.qcow2"));
        var r = await UrlDiskCli.RunAsync("resize", "--preallocation=metadata", temp.File("u.qcow2"), "2M");
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("extended_l2", r.Stderr, StringComparison.Ordinal);
        byte[] after = await File.ReadAllBytesAsync(temp.File("u.qcow2"));
        Assert.True(before.AsSpan().SequenceEqual(after), "a refused resize changed the image");
    }

    [Theory]
    [InlineData("metadata")]
    [InlineData("falloc")]
    public async Task Measure_fully_allocated_is_the_length_create_writes(string mode)
    {
        using var temp = new TempDir("urldisk-prealloc");
        string u = temp.File("u.qcow2");
        await UrlDiskOkAsync("create", "-q", "-f", "qcow2", "-o", $"preallocation={mode}", u, "30M");
        var m = JsonNode.Parse((await UrlDiskOkAsync("measure", "-O", "qcow2", "-o", $"preallocation={mode}", "--size", "30M", "--output", "json")).Stdout)!;
        var qm = JsonNode.Parse((await QemuImgOkAsync("measure", "-O", "qcow2", "-o", $"preallocation={mode}", "--size", "30M", "--output", "json")).Stdout)!;
        Assert.Equal(qm.ToJsonString(), m.ToJsonString());
        Assert.Equal(new FileInfo(u).Length, (long)m["fully-allocated"]!);
        if (mode == "falloc")
        {
            Assert.Equal(new FileInfo(u).Length, (long)m["required"]!);
        }
    }
}
