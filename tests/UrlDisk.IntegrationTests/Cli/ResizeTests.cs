using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary><c>resize</c> against qemu-img resize on copies of the same images: qemu-img check clean, compare identical.</summary>
public sealed class ResizeTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    private static Task<ProcessResult> UrlDiskAsync(QemuTools q, params string[] args) => UrlDiskCli.RunAsync(args, workingDirectory: q.Dir);

    /// <summary>Runs <c>resize FLAGS FILE SIZE</c> (the last argument is the size) with urldisk on one copy and qemu-img on the other.</summary>
    private static async Task ResizeBothAsync(QemuTools q, string ours, string theirs, params string[] args)
    {
        var r = await UrlDiskAsync(q, ["resize", .. args[..^1], ours, args[^1]]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("Image resized.\n", r.Stdout);
        q.Img(["resize", .. args[..^1], theirs, args[^1]]);
    }

    [Fact]
    public async Task Qcow2_grows_past_its_L1_table_as_qemu_img_grows_it()
    {
        using var q = new QemuTools();
        // 512-byte clusters: one L2 table covers 32 KiB, so 1M -> 100M needs a much larger L1 table.
        q.Img("create", "-f", "qcow2", "-o", "cluster_size=512", "a.qcow2", "1M");
        q.Io("-c", "write -P 7 0 64k", "-c", "write -P 8 900k 124k", "a.qcow2");
        File.Copy(q.PathOf("a.qcow2"), q.PathOf("b.qcow2"));

        var r = await UrlDiskAsync(q, "resize", "a.qcow2", "100M");
        Assert.True(r.ExitCode == 0, r.ToString());
        q.Img("resize", "b.qcow2", "100M");
        q.Img("check", "a.qcow2");
        Assert.Contains("virtual size: 100 MiB (104857600 bytes)", q.Img("info", "a.qcow2"), StringComparison.Ordinal);
        Assert.Contains("Images are identical.", q.Img("compare", "-s", "a.qcow2", "b.qcow2"), StringComparison.Ordinal);

        // The new area takes writes (new L2 tables under the new L1 table) and keeps them.
        q.Io("-c", "write -P 9 99M 1M", "a.qcow2");
        q.Img("check", "a.qcow2");
        Assert.Contains("read 1048576/1048576", q.Io("-c", "read -P 9 99M 1M", "-c", "read -P 8 900k 124k", "a.qcow2"), StringComparison.Ordinal);

        // Relative sizes, as qemu-img: +N and -N.
        await ResizeBothAsync(q, "a.qcow2", "b.qcow2", "+64k");
        q.Img("check", "a.qcow2");
        Assert.Contains("(104923136 bytes)", q.Img("info", "a.qcow2"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Qcow2_grown_over_a_longer_backing_file_reads_zeros_there_as_with_qemu_img()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "raw", "base.raw", "4M");
        q.Io("-f", "raw", "-c", "write -P 1 0 4M", "base.raw");
        q.Img("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "a.qcow2", "1M");
        File.Copy(q.PathOf("a.qcow2"), q.PathOf("b.qcow2"));
        await ResizeBothAsync(q, "a.qcow2", "b.qcow2", "3M");
        q.Img("check", "a.qcow2");
        Assert.Contains("Images are identical.", q.Img("compare", "a.qcow2", "b.qcow2"), StringComparison.Ordinal);
        Assert.Contains("read 2097152/2097152", q.Io("-c", "read -P 0 1M 2M", "-c", "read -P 1 0 1M", "a.qcow2"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Qcow2_shrinks_only_with_shrink_and_drops_the_tail_as_qemu_img()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "a.qcow2", "10M");
        q.Io("-c", "write -P 3 0 1M", "-c", "write -P 4 8M 2M", "a.qcow2");
        File.Copy(q.PathOf("a.qcow2"), q.PathOf("b.qcow2"));
        byte[] before = File.ReadAllBytes(q.PathOf("a.qcow2"));

        var refused = await UrlDiskAsync(q, "resize", "a.qcow2", "4M");
        CliAssert.Fails(refused, "--shrink");
        Assert.Equal(1, refused.ExitCode);
        Assert.True(before.AsSpan().SequenceEqual(File.ReadAllBytes(q.PathOf("a.qcow2"))), "a refused shrink changed the image");

        await ResizeBothAsync(q, "a.qcow2", "b.qcow2", "--shrink", "4M");
        string check = q.Img("check", "a.qcow2");
        Assert.Contains("No errors were found", check, StringComparison.Ordinal);
        Assert.Contains("Images are identical.", q.Img("compare", "-s", "a.qcow2", "b.qcow2"), StringComparison.Ordinal);

        // The 2 MiB past the end are freed and the file is cut after the last cluster in use.
        long end = long.Parse(check.Split("Image end offset: ")[1].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(end, new FileInfo(q.PathOf("a.qcow2")).Length);
        Assert.True(end <= before.Length - (2 << 20), $"file {end} bytes after dropping 2 MiB of {before.Length}");

        // Grown again, the dropped area reads as zeros.
        await ResizeBothAsync(q, "a.qcow2", "b.qcow2", "10M");
        q.Img("check", "a.qcow2");
        Assert.Contains("read 6291456/6291456", q.Io("-c", "read -P 0 4M 6M", "-c", "read -P 3 0 1M", "a.qcow2"), StringComparison.Ordinal);
        Assert.Contains("Images are identical.", q.Img("compare", "-s", "a.qcow2", "b.qcow2"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Raw_files_grow_shrink_and_preallocate_as_with_qemu_img()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "raw", "a.raw", "10M");
        q.Io("-f", "raw", "-c", "write -P 5 0 1M", "a.raw");
        File.Copy(q.PathOf("a.raw"), q.PathOf("b.raw"));
        foreach (string[] args in new[] { ["+1M"], new[] { "--shrink", "-1k" }, ["-f", "raw", "--shrink", "1000"], ["-f", "raw", "+25"], ["--preallocation=falloc", "5M"], ["--preallocation=full", "7M"] })
        {
            await ResizeBothAsync(q, "a.raw", "b.raw", args);
            Assert.Equal(new FileInfo(q.PathOf("b.raw")).Length, new FileInfo(q.PathOf("a.raw")).Length);
            Assert.True(File.ReadAllBytes(q.PathOf("a.raw")).AsSpan().SequenceEqual(File.ReadAllBytes(q.PathOf("b.raw"))), $"resize {string.Join(' ', args)}");
        }

        // full preallocation wrote the new area: nothing is left sparse.
        var blocks = await ProcessRunner.RunAsync("stat", ["-c", "%b", q.PathOf("a.raw")]);
        Assert.True(long.Parse(blocks.Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture) * 512 >= 7L << 20, blocks.Stdout);
    }

    [Fact]
    public async Task Remote_and_bad_requests_are_refused_in_one_line_with_nothing_changed()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "a.qcow2", "1M");
        q.Img("create", "-f", "raw", "a.raw", "1M");
        string url = fixture.Server.HttpUrl(fixture.Server.Put($"resize-{Guid.NewGuid():N}/a.qcow2", File.ReadAllBytes(q.PathOf("a.qcow2"))));
        byte[] qcow2 = File.ReadAllBytes(q.PathOf("a.qcow2"));
        foreach (var (args, words) in new (string[], string)[]
        {
            (["resize", url, "+1G"], "remote"),
            (["resize", "a.qcow2", "2000001"], "multiple of 512"),
            (["resize", "a.qcow2", "abc"], "abc"),
            (["resize", "--shrink", "a.qcow2", "-5G"], "negative"),
            (["resize", "--shrink", "--preallocation=full", "a.qcow2", "512k"], "preallocation"),
            (["resize", "--preallocation=metadata", "a.raw", "2M"], "metadata"),
            (["resize", "--preallocation=lots", "a.raw", "2M"], "off, metadata, falloc or full"),
            (["resize", "missing.qcow2", "2M"], "missing.qcow2"),
        })
        {
            var r = await UrlDiskAsync(q, args);
            Assert.Equal(1, r.ExitCode);
            Assert.Single(CliAssert.Fails(r, words).Split('\n'));
        }

        Assert.True(qcow2.AsSpan().SequenceEqual(File.ReadAllBytes(q.PathOf("a.qcow2"))), "a refused resize changed the image");
        Assert.Equal(1 << 20, new FileInfo(q.PathOf("a.raw")).Length);
    }
}
