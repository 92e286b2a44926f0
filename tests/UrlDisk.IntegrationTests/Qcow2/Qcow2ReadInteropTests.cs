namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary>Images made by qemu-img/qemu-io, read by UrlDisk, compared byte for byte with qemu-img convert -O raw.</summary>
public class Qcow2ReadInteropTests
{
    /// <summary>A raw file with a mix of patterns, holes and zeros.</summary>
    private static string MakeBase(QemuTools q)
    {
        q.Img("create", "-f", "raw", "base.raw", "5M");
        q.Io("-f", "raw", "-c", "write -P 0x11 0 1M", "-c", "write -P 0x22 1536k 300k", "-c", "write -P 0x5a 4000k 7k", "base.raw");
        // Some incompressible bytes too.
        var rnd = new byte[256 * 1024];
        new Random(7).NextBytes(rnd);
        using (var f = File.OpenWrite(q.PathOf("base.raw")))
        {
            f.Position = 2 * 1024 * 1024 + 1000;
            f.Write(rnd);
        }

        return "base.raw";
    }

    [Theory]
    [InlineData("0.10", 512)]
    [InlineData("0.10", 65536)]
    [InlineData("1.1", 512)]
    [InlineData("1.1", 4096)]
    [InlineData("1.1", 65536)]
    [InlineData("1.1", 2097152)]
    public async Task Plain_images_of_every_cluster_size_read_like_qemu(string compat, int clusterSize)
    {
        using var q = new QemuTools();
        MakeBase(q);
        q.Img("convert", "-O", "qcow2", "-o", $"compat={compat},cluster_size={clusterSize}", "base.raw", "img.qcow2");
        // Odd-sized reads cross cluster and table boundaries.
        QemuTools.AssertSameBytes(q.QemuRaw("img.qcow2"), await QemuTools.UrlDiskRawAsync(q.PathOf("img.qcow2"), 12345));
    }

    [Theory]
    [InlineData("zlib", 65536)]
    [InlineData("zlib", 4096)]
    [InlineData("zstd", 65536)]
    [InlineData("zstd", 512)]
    [InlineData("zstd", 2097152)]
    public async Task Compressed_images_read_like_qemu(string compression, int clusterSize)
    {
        using var q = new QemuTools();
        MakeBase(q);
        q.Img("convert", "-c", "-O", "qcow2", "-o", $"compression_type={compression},cluster_size={clusterSize}", "base.raw", "img.qcow2");
        QemuTools.AssertSameBytes(q.QemuRaw("img.qcow2"), await QemuTools.UrlDiskRawAsync(q.PathOf("img.qcow2"), 100_000));
    }

    [Fact]
    public async Task Compressed_v2_image_reads_like_qemu()
    {
        using var q = new QemuTools();
        MakeBase(q);
        q.Img("convert", "-c", "-O", "qcow2", "-o", "compat=0.10", "base.raw", "img.qcow2");
        QemuTools.AssertSameBytes(q.QemuRaw("img.qcow2"), await QemuTools.UrlDiskRawAsync(q.PathOf("img.qcow2")));
    }

    [Theory]
    [InlineData(65536)]
    [InlineData(16384)]
    [InlineData(2097152)]
    public async Task Extended_l2_with_partial_subclusters_and_zeros_reads_like_qemu(int clusterSize)
    {
        using var q = new QemuTools();
        MakeBase(q);
        q.Img("convert", "-O", "qcow2", "base.raw", "lower.qcow2");
        q.Img("create", "-f", "qcow2", "-o", $"extended_l2=on,cluster_size={clusterSize}", "-b", "lower.qcow2", "-F", "qcow2", "top.qcow2");
        q.Io("-c", "write -P 0x77 3k 5k", "-c", "write -z 100k 40k", "-c", "write -P 0x66 1100k 2k", "-c", "discard 2M 128k", "-c", "write -z 4M 512k", "top.qcow2");
        QemuTools.AssertSameBytes(q.QemuRaw("top.qcow2"), await QemuTools.UrlDiskRawAsync(q.PathOf("top.qcow2"), 7777));
    }

    [Fact]
    public async Task Three_deep_chain_with_relative_names_and_zero_clusters_reads_like_qemu()
    {
        using var q = new QemuTools();
        MakeBase(q);
        Directory.CreateDirectory(q.PathOf("d1/d2"));
        q.Img("convert", "-O", "qcow2", "base.raw", "d1/d2/bottom.qcow2");
        q.Img("create", "-f", "qcow2", "-b", "d2/bottom.qcow2", "-F", "qcow2", "d1/mid.qcow2");
        q.Io("-c", "write -P 0x44 512k 256k", "-c", "write -z 0 64k", "d1/mid.qcow2");
        q.Img("create", "-f", "qcow2", "-b", "d1/mid.qcow2", "-F", "qcow2", "top.qcow2");
        q.Io("-c", "write -P 0x55 700k 10k", "-c", "write -z 1536k 128k", "top.qcow2");
        QemuTools.AssertSameBytes(q.QemuRaw("top.qcow2"), await QemuTools.UrlDiskRawAsync(q.PathOf("top.qcow2"), 65536 + 3));
    }

    [Fact]
    public async Task Short_backing_file_reads_zeros_past_its_end()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "raw", "short.raw", "1M");
        q.Io("-f", "raw", "-c", "write -P 0x11 0 1M", "short.raw");
        q.Img("create", "-f", "qcow2", "-b", "short.raw", "-F", "raw", "top.qcow2", "3M");
        q.Io("-c", "write -P 0x99 2M 4k", "top.qcow2");
        QemuTools.AssertSameBytes(q.QemuRaw("top.qcow2"), await QemuTools.UrlDiskRawAsync(q.PathOf("top.qcow2")));
    }

    [Fact]
    public async Task Image_with_snapshots_reads_the_active_state_and_lists_snapshots()
    {
        using var q = new QemuTools();
        MakeBase(q);
        q.Img("convert", "-O", "qcow2", "base.raw", "img.qcow2");
        q.Img("snapshot", "-c", "first", "img.qcow2");
        q.Io("-c", "write -P 0xab 0 128k", "img.qcow2");
        q.Img("snapshot", "-c", "second", "img.qcow2");
        q.Io("-c", "write -P 0xcd 64k 128k", "img.qcow2");
        QemuTools.AssertSameBytes(q.QemuRaw("img.qcow2"), await QemuTools.UrlDiskRawAsync(q.PathOf("img.qcow2")));
        await using var image = await UrlDisk.Opening.ImageOpener.OpenAsync(q.PathOf("img.qcow2"));
        var snapshots = (IEnumerable<IReadOnlyDictionary<string, object?>>)image.Info.Details["snapshots"]!;
        Assert.Equal(["first", "second"], snapshots.Select(s => (string)s["name"]!));
    }

    [Fact]
    public async Task Concurrent_reads_return_the_same_bytes()
    {
        using var q = new QemuTools();
        MakeBase(q);
        q.Img("convert", "-c", "-O", "qcow2", "-o", "cluster_size=4096", "base.raw", "img.qcow2");
        var expected = q.QemuRaw("img.qcow2");
        await using var image = await UrlDisk.Opening.ImageOpener.OpenAsync(q.PathOf("img.qcow2"));
        var actual = new byte[image.Length];
        await Parallel.ForAsync(0, 64, async (i, ct) =>
        {
            long chunk = image.Length / 64;
            await image.ReadAsync(i * chunk, actual.AsMemory((int)(i * chunk), (int)chunk), ct);
        });
        QemuTools.AssertSameBytes(expected, actual);
    }
}
