using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary><c>commit</c> against qemu-img commit on copies of the same chains.</summary>
public sealed class CommitTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    private static Task<ProcessResult> UrlDiskAsync(QemuTools q, params string[] args) => UrlDiskCli.RunAsync(args, workingDirectory: q.Dir);

    private static void MakeChain(QemuTools q, string name)
    {
        q.Img("create", "-f", "raw", $"{name}.raw", "4M");
        q.Io("-f", "raw", "-c", "write -P 1 0 4M", $"{name}.raw");
        q.Img("create", "-f", "qcow2", "-b", $"{name}.raw", "-F", "raw", $"{name}.qcow2");
        q.Io("-c", "write -P 2 1M 64k", "-c", "write -z 3M 64k", "-c", "write -P 3 3900k 7k", $"{name}.qcow2");
    }

    [Fact]
    public async Task Commit_into_a_raw_base_matches_qemu_img_and_empties_the_overlay()
    {
        using var q = new QemuTools();
        MakeChain(q, "a");
        MakeChain(q, "b");
        byte[] before = q.QemuRaw("a.qcow2");
        var r = await UrlDiskAsync(q, "commit", "a.qcow2");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("Image committed.\n", r.Stdout);
        q.Img("commit", "b.qcow2");

        QemuTools.AssertSameBytes(before, File.ReadAllBytes(q.PathOf("a.raw")));
        Assert.Contains("Images are identical.", q.Img("compare", "-f", "raw", "-F", "raw", "a.raw", "b.raw"), StringComparison.Ordinal);
        q.Img("check", "a.qcow2");
        Assert.DoesNotContain("\"depth\": 0", q.Img("map", "--output=json", "a.qcow2"), StringComparison.Ordinal);
        QemuTools.AssertSameBytes(before, q.QemuRaw("a.qcow2"));
    }

    [Fact]
    public async Task Commit_d_keeps_the_overlay_and_b_commits_two_layers_into_a_smaller_qcow2_base()
    {
        using var q = new QemuTools();
        MakeChain(q, "a");
        byte[] overlay = File.ReadAllBytes(q.PathOf("a.qcow2"));
        var d = await UrlDiskAsync(q, "commit", "-d", "a.qcow2");
        Assert.True(d.ExitCode == 0, d.ToString());
        Assert.True(overlay.AsSpan().SequenceEqual(File.ReadAllBytes(q.PathOf("a.qcow2"))), "-d changed the overlay");
        QemuTools.AssertSameBytes(q.QemuRaw("a.qcow2"), File.ReadAllBytes(q.PathOf("a.raw")));

        // base.qcow2 (2M) <- mid.qcow2 (3M) <- top.qcow2 (3M): -b base commits both layers and grows the base.
        foreach (string p in new[] { "x", "y" })
        {
            q.Img("create", "-f", "qcow2", $"{p}-base.qcow2", "2M");
            q.Io("-c", "write -P 5 0 2M", $"{p}-base.qcow2");
            q.Img("create", "-f", "qcow2", "-b", $"{p}-base.qcow2", "-F", "qcow2", $"{p}-mid.qcow2", "3M");
            q.Io("-c", "write -P 6 512k 64k", $"{p}-mid.qcow2");
            q.Img("create", "-f", "qcow2", "-b", $"{p}-mid.qcow2", "-F", "qcow2", $"{p}-top.qcow2");
            q.Io("-c", "write -P 7 2M 1M", "-c", "write -z 0 4k", $"{p}-top.qcow2");
        }

        byte[] top = q.QemuRaw("x-top.qcow2");
        var r = await UrlDiskAsync(q, "commit", "-b", "x-base.qcow2", "x-top.qcow2");
        Assert.True(r.ExitCode == 0, r.ToString());
        q.Img("commit", "-b", "y-base.qcow2", "y-top.qcow2");
        q.Img("check", "x-base.qcow2");
        q.Img("check", "x-top.qcow2");
        Assert.Contains("(3145728 bytes)", q.Img("info", "x-base.qcow2"), StringComparison.Ordinal);
        QemuTools.AssertSameBytes(top, q.QemuRaw("x-base.qcow2"));
        Assert.Contains("Images are identical.", q.Img("compare", "-s", "x-base.qcow2", "y-base.qcow2"), StringComparison.Ordinal);
        QemuTools.AssertSameBytes(top, q.QemuRaw("x-top.qcow2"));
    }

    [Fact]
    public async Task A_remote_base_or_bad_input_is_refused_with_nothing_changed()
    {
        using var q = new QemuTools();
        string url = fixture.Server.HttpUrl(fixture.Server.Put($"commit-{Guid.NewGuid():N}/base.raw", new byte[1 << 20]));
        q.Img("create", "-f", "raw", "local.raw", "1M");
        q.Img("create", "-f", "qcow2", "-b", "local.raw", "-F", "raw", "vm.qcow2");
        q.Io("-c", "write -P 5 0 64k", "vm.qcow2");
        q.Img("rebase", "-u", "-b", url, "-F", "raw", "vm.qcow2");
        q.Img("create", "-f", "qcow2", "alone.qcow2", "1M");
        byte[] overlay = File.ReadAllBytes(q.PathOf("vm.qcow2"));
        foreach (var (args, words) in new (string[], string)[]
        {
            (["commit", "vm.qcow2"], "not a local file"),
            (["commit", "alone.qcow2"], "no backing file"),
            (["commit", "-b", "other.raw", "vm.qcow2"], "not in the backing chain"),
            (["commit", url], "remote"),
            (["commit", "-t", "fast", "vm.qcow2"], "Invalid cache option: fast"),
        })
        {
            var r = await UrlDiskAsync(q, args);
            Assert.Equal(1, r.ExitCode);
            Assert.Single(CliAssert.Fails(r, words).Split('\n'));
        }

        Assert.True(overlay.AsSpan().SequenceEqual(File.ReadAllBytes(q.PathOf("vm.qcow2"))), "a refused commit changed the overlay");
    }
}
