using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary>Images created and written by UrlDisk, judged by qemu-img check/compare/info and written further by qemu-io.</summary>
public class Qcow2WriteInteropTests
{
    public static TheoryData<string> Options => new()
    {
        "",
        "compat=0.10",
        "cluster_size=512",
        "cluster_size=4096,refcount_bits=1",
        "cluster_size=2M,refcount_bits=64",
        "extended_l2=on",
        "extended_l2=on,cluster_size=16k,refcount_bits=8",
        "compression_type=zstd,refcount_bits=32",
    };

    [Theory]
    [MemberData(nameof(Options))]
    public async Task Created_image_is_accepted_by_qemu_img(string options)
    {
        using var q = new QemuTools();
        await Qcow2Creator.CreateAsync(q.PathOf("new.qcow2"), 64L << 20, Qcow2CreateOptions.Parse(options));
        q.Img("check", "new.qcow2");
        string info = q.Img("info", "--output=json", "new.qcow2");
        Assert.Contains("\"virtual-size\": 67108864", info, StringComparison.Ordinal);
        q.Io("-c", "write -P 0x42 1M 100k", "new.qcow2");
        q.Img("check", "new.qcow2");
    }

    public static TheoryData<string, bool> OptionsWithAndWithoutBacking()
    {
        var data = new TheoryData<string, bool>();
        foreach (var o in Options)
        {
            data.Add(o, true);
        }

        data.Add("compat=0.10", false);
        data.Add("", false);
        data.Add("extended_l2=on", false);
        return data;
    }

    [Theory]
    [MemberData(nameof(OptionsWithAndWithoutBacking))]
    public async Task Random_writes_zeroes_and_discards_match_a_model_and_qemu(string options, bool withBacking)
    {
        using var q = new QemuTools();
        const long size = 6L << 20;
        // A backing file with data everywhere, so zeros and discards must hide it.
        q.Img("create", "-f", "raw", "base.raw", size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        q.Io("-f", "raw", "-c", "write -P 0xbb 0 6M", "base.raw");
        var model = File.ReadAllBytes(q.PathOf("base.raw"));
        var opts = Qcow2CreateOptions.Parse(options) with { BackingFile = withBacking ? "base.raw" : null, BackingFormat = withBacking ? "raw" : null };
        if (!withBacking)
        {
            model.AsSpan().Clear();
        }

        await using (var image = await Qcow2Creator.CreateAndOpenAsync(q.PathOf("top.qcow2"), size, opts))
        {
            var rnd = new Random(options.Sum(c => c) + (withBacking ? 1 : 0));
            for (int op = 0; op < 300; op++)
            {
                long offset = rnd.NextInt64(size - 1);
                int length = (int)Math.Min(size - offset, rnd.Next(4) == 0 ? rnd.Next(1, 300_000) : rnd.Next(1, 9000));
                switch (rnd.Next(6))
                {
                    case 0:
                        await image.WriteZeroesAsync(offset, length);
                        model.AsSpan((int)offset, length).Clear();
                        break;
                    case 1:
                        // Discard may leave anything: re-write the range afterwards so the model stays exact.
                        await image.TrimAsync(offset, length);
                        var after = new byte[length];
                        rnd.NextBytes(after);
                        await image.WriteAsync(offset, after);
                        after.CopyTo(model.AsSpan((int)offset));
                        break;
                    default:
                        var data = new byte[length];
                        if (rnd.Next(3) == 0)
                        {
                            data.AsSpan().Fill((byte)rnd.Next(256));
                        }
                        else
                        {
                            rnd.NextBytes(data);
                        }

                        await image.WriteAsync(offset, data);
                        data.CopyTo(model.AsSpan((int)offset));
                        break;
                }
            }

            QemuTools.AssertSameBytes(model, await QemuTools.ReadAllAsync(image, 77_777));
        }

        q.Img("check", "top.qcow2");
        await File.WriteAllBytesAsync(q.PathOf("model.raw"), model);
        q.Img("compare", "-f", "qcow2", "-F", "raw", "top.qcow2", "model.raw");
        // qemu writes on top of what UrlDisk wrote, and the image stays consistent.
        q.Io("-c", "write -P 0x17 100k 300k", "-c", "write -z 1M 64k", "top.qcow2");
        q.Img("check", "top.qcow2");
        QemuTools.AssertSameBytes(q.QemuRaw("top.qcow2"), await QemuTools.UrlDiskRawAsync(q.PathOf("top.qcow2")));
    }

    [Theory]
    [InlineData("compression_type=zlib")]
    [InlineData("compression_type=zstd")]
    [InlineData("compression_type=zstd,cluster_size=4096,compat=1.1")]
    [InlineData("compat=0.10,cluster_size=512")]
    public async Task Compressed_clusters_written_by_urldisk_read_back_in_qemu(string options)
    {
        using var q = new QemuTools();
        var o = Qcow2CreateOptions.Parse(options);
        long size = 40L * o.ClusterSize + 512;
        var content = new byte[size];
        var rnd = new Random(3);
        // A random 6000-byte block repeated: deflate refers back further than QEMU's 4 KiB window.
        var block = new byte[6000];
        rnd.NextBytes(block);
        for (int i = 0; i < content.Length; i += block.Length)
        {
            block.AsSpan(0, Math.Min(block.Length, content.Length - i)).CopyTo(content.AsSpan(i));
        }

        content.AsSpan(3 * o.ClusterSize, o.ClusterSize).Clear();

        rnd.NextBytes(content.AsSpan(5 * o.ClusterSize, o.ClusterSize));
        await using (var image = await Qcow2Creator.CreateAndOpenAsync(q.PathOf("c.qcow2"), size, o))
        {
            for (long c = 0; c * o.ClusterSize < size; c++)
            {
                int n = (int)Math.Min(o.ClusterSize, size - (c * o.ClusterSize));
                await image.WriteCompressedAsync(c, content.AsMemory((int)(c * o.ClusterSize), n));
            }

            QemuTools.AssertSameBytes(content, await QemuTools.ReadAllAsync(image));
            // Overwrite one compressed cluster: it must become a normal one and free its share.
            await image.WriteAsync(o.ClusterSize + 10, new byte[] { 1, 2, 3 });
            content[o.ClusterSize + 10] = 1;
            content[o.ClusterSize + 11] = 2;
            content[o.ClusterSize + 12] = 3;
        }

        q.Img("check", "c.qcow2");
        QemuTools.AssertSameBytes(content, q.QemuRaw("c.qcow2"));
        string check = q.Img("check", "--output=json", "c.qcow2");
        Assert.Matches("\"compressed-clusters\": [1-9]", check);
    }

    [Fact]
    public async Task Writes_into_an_image_with_snapshots_keep_the_snapshot_intact()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "snap.qcow2", "4M");
        q.Io("-c", "write -P 0x21 0 4M", "snap.qcow2");
        q.Img("snapshot", "-c", "s1", "snap.qcow2");
        await using (var image = await ImageOpener.OpenAsync(q.PathOf("snap.qcow2"), null, new OpenContext { Writable = true }))
        {
            await image.WriteAsync(70_000, new byte[200_000]);
            await image.WriteZeroesAsync(1 << 20, 1 << 20);
            await image.TrimAsync(3 << 20, 65536);
        }

        q.Img("check", "snap.qcow2");
        q.Img("snapshot", "-a", "s1", "snap.qcow2");
        q.Img("check", "snap.qcow2");
        Assert.All(q.QemuRaw("snap.qcow2"), b => Assert.Equal(0x21, b));
    }

    [Theory]
    [InlineData("", false)]
    [InlineData("compression_type=zlib", true)]
    [InlineData("compression_type=zstd", true)]
    [InlineData("compat=0.10,cluster_size=4096", true)]
    [InlineData("extended_l2=on", false)]
    public async Task Writer_converts_a_qemu_image_into_one_qemu_reads_the_same(string options, bool compress)
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "src.qcow2", "5M");
        q.Io("-c", "write -P 0x12 0 700k", "-c", "write -P 0x34 2M 1000k", "-c", "write -z 3M 64k", "-c", "write -P 0x56 4900k 100k", "src.qcow2");
        await using (var source = await ImageOpener.OpenAsync(q.PathOf("src.qcow2")))
        {
            await Qcow2Writer.ConvertAsync(source, q.PathOf("out.qcow2"), Qcow2CreateOptions.Parse(options), compress);
        }

        q.Img("check", "out.qcow2");
        q.Img("compare", "src.qcow2", "out.qcow2");
        if (compress)
        {
            Assert.Matches("\"compressed-clusters\": [1-9]", q.Img("check", "--output=json", "out.qcow2"));
        }
    }

    [Theory]
    [InlineData("", "1G")]
    [InlineData("compat=0.10,cluster_size=512", "100M")]
    [InlineData("cluster_size=2M,refcount_bits=1,compression_type=zstd", "10G")]
    [InlineData("extended_l2=on,cluster_size=128k", "3G")]
    [InlineData("cluster_size=4096", "64M")]
    [InlineData("cluster_size=2048,lazy_refcounts=on", "1G")]
    [InlineData("cluster_size=8192", "64M")]
    public void Create_writes_the_same_bytes_as_qemu_img_create(string options, string size)
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "-u", "-o", options.Length == 0 ? "cluster_size=65536" : options, "qemu.qcow2", size);
        var (exit, _) = q.RunWithExit(Infrastructure.UrlDiskCli.Launcher, ["create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", .. (options.Length == 0 ? Array.Empty<string>() : ["-o", options]), "ours.qcow2", size], [0]);
        Assert.Equal(0, exit);
        var theirs = File.ReadAllBytes(q.PathOf("qemu.qcow2"));
        var ours = File.ReadAllBytes(q.PathOf("ours.qcow2"));
        // Feature-name table only above 4 KiB clusters; the file ends with the L1 table's last entry, as qemu-img's.
        QemuTools.AssertSameBytes(theirs, ours);
    }

    [Fact]
    public async Task Concurrent_writes_and_reads_keep_the_image_consistent()
    {
        using var q = new QemuTools();
        const int size = 16 << 20;
        var model = new byte[size];
        await using (var image = await Qcow2Creator.CreateAndOpenAsync(q.PathOf("conc.qcow2"), size, Qcow2CreateOptions.Parse("cluster_size=4096")))
        {
            // 32 writers on disjoint stripes, readers alongside.
            await Parallel.ForAsync(0, 32, async (w, ct) =>
            {
                var rnd = new Random(w);
                int stripe = size / 32;
                for (int i = 0; i < 40; i++)
                {
                    int length = rnd.Next(1, 20_000);
                    int offset = (w * stripe) + rnd.Next(stripe - length);
                    var data = new byte[length];
                    rnd.NextBytes(data);
                    if (i % 7 == 3)
                    {
                        await image.WriteZeroesAsync(offset, length, cancellationToken: ct);
                        lock (model)
                        {
                            model.AsSpan(offset, length).Clear();
                        }
                    }
                    else
                    {
                        await image.WriteAsync(offset, data, cancellationToken: ct);
                        lock (model)
                        {
                            data.CopyTo(model, offset);
                        }
                    }

                    await image.ReadAsync(offset, new byte[length], ct);
                }
            });
            QemuTools.AssertSameBytes(model, await QemuTools.ReadAllAsync(image));
        }

        q.Img("check", "conc.qcow2");
        await File.WriteAllBytesAsync(q.PathOf("model.raw"), model);
        q.Img("compare", "-f", "qcow2", "-F", "raw", "conc.qcow2", "model.raw");
    }
}
