using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary><c>rebase</c>: safe mode keeps what the overlay reads, -u only renames (the fix for a base that moved to a new URL).</summary>
public sealed class RebaseTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    private static Task<ProcessResult> UrlDiskAsync(QemuTools q, params string[] args) => UrlDiskCli.RunAsync(args, workingDirectory: q.Dir);

    /// <summary>old.raw (4 MiB of 0x01), new.raw (its first 2 MiB, then zeros) and an overlay of old.raw with its own 64 KiB.</summary>
    private static void MakeChain(QemuTools q, string overlay)
    {
        q.Img("create", "-f", "raw", "old.raw", "4M");
        q.Io("-f", "raw", "-c", "write -P 1 0 4M", "old.raw");
        q.Img("create", "-f", "raw", "new.raw", "4M");
        q.Io("-f", "raw", "-c", "write -P 1 0 2M", "-c", "write -P 9 3M 4k", "new.raw");
        q.Img("create", "-f", "qcow2", "-b", "old.raw", "-F", "raw", overlay);
        q.Io("-c", "write -P 2 1M 64k", overlay);
    }

    [Fact]
    public async Task Safe_rebase_keeps_the_contents_and_matches_qemu_img()
    {
        using var q = new QemuTools();
        MakeChain(q, "a.qcow2");
        File.Copy(q.PathOf("a.qcow2"), q.PathOf("b.qcow2"));
        byte[] before = q.QemuRaw("a.qcow2");

        var r = await UrlDiskAsync(q, "rebase", "-b", "new.raw", "-F", "raw", "a.qcow2");
        Assert.True(r.ExitCode == 0, r.ToString());
        q.Img("rebase", "-b", "new.raw", "-F", "raw", "b.qcow2");
        q.Img("check", "a.qcow2");
        string info = q.Img("info", "a.qcow2");
        Assert.Contains("backing file: new.raw", info, StringComparison.Ordinal);
        Assert.Contains("backing file format: raw", info, StringComparison.Ordinal);
        QemuTools.AssertSameBytes(before, q.QemuRaw("a.qcow2"));
        Assert.Contains("Images are identical.", q.Img("compare", "a.qcow2", "b.qcow2"), StringComparison.Ordinal);

        // Only what differs was written: the first 2 MiB (the same in both bases) still come from the base.
        string map = q.Img("map", "--output=json", "a.qcow2");
        Assert.Contains("\"start\": 0, \"length\": 1048576, \"depth\": 1", map, StringComparison.Ordinal);
        Assert.Contains("read 65536/65536", q.Io("-c", "read -P 2 1M 64k", "-c", "read -P 1 2M 64k", "a.qcow2"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rebase_onto_no_backing_file_copies_the_data_in()
    {
        using var q = new QemuTools();
        MakeChain(q, "a.qcow2");
        byte[] before = q.QemuRaw("a.qcow2");
        var r = await UrlDiskAsync(q, "rebase", "-b", "", "a.qcow2");
        Assert.True(r.ExitCode == 0, r.ToString());
        q.Img("check", "a.qcow2");
        Assert.DoesNotContain("backing file", q.Img("info", "a.qcow2"), StringComparison.Ordinal);
        File.Delete(q.PathOf("old.raw"));
        QemuTools.AssertSameBytes(before, q.QemuRaw("a.qcow2"));
    }

    [Fact]
    public async Task Unsafe_rebase_points_an_overlay_at_its_base_moved_to_a_new_url()
    {
        using var q = new QemuTools();
        var baseBytes = new byte[2 << 20];
        new Random(11).NextBytes(baseBytes);
        string dir = $"rebase-{Guid.NewGuid():N}";
        string oldPath = fixture.Server.Put($"{dir}/old/base.raw", baseBytes);
        string oldUrl = fixture.Server.HttpUrl(oldPath);
        // The overlay's own data is written over a local copy, then it is pointed at the URL (qemu-io needs no network).
        File.WriteAllBytes(q.PathOf("local.raw"), baseBytes);
        q.Img("create", "-f", "qcow2", "-b", "local.raw", "-F", "raw", "vm.qcow2");
        q.Io("-c", "write -P 5 0 64k", "vm.qcow2");
        q.Img("rebase", "-u", "-b", oldUrl, "-F", "raw", "vm.qcow2");
        File.Delete(q.PathOf("local.raw"));
        var expected = (byte[])baseBytes.Clone();
        Array.Fill(expected, (byte)5, 0, 65536);
        File.WriteAllBytes(q.PathOf("expected.raw"), expected);

        // The base moves; the overlay's reads now fail.
        string newPath = fixture.Server.Put($"{dir}/new/base.raw", baseBytes);
        File.Delete(Path.Combine(fixture.Server.DocRoot, oldPath.TrimStart('/')));
        var broken = await UrlDiskAsync(q, "compare", "vm.qcow2", "expected.raw");
        Assert.NotEqual(0, broken.ExitCode);

        string newUrl = fixture.Server.HttpUrl(newPath);
        var r = await UrlDiskAsync(q, "rebase", "-u", "-b", newUrl, "-F", "raw", "vm.qcow2");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Empty(r.Stdout);
        var check = await QemuImg.RunAsync("check", q.PathOf("vm.qcow2"));
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Contains($"backing file: {newUrl}", q.Img("info", "vm.qcow2"), StringComparison.Ordinal);
        var same = await UrlDiskAsync(q, "compare", "vm.qcow2", "expected.raw");
        Assert.True(same.ExitCode == 0, same.ToString());
        var copy = await UrlDiskAsync(q, "convert", "-O", "raw", "vm.qcow2", "copy.raw");
        Assert.True(copy.ExitCode == 0, copy.ToString());
        QemuTools.AssertSameBytes(expected, File.ReadAllBytes(q.PathOf("copy.raw")));
    }

    [Fact]
    public async Task Unsafe_rebase_changes_only_the_header_as_qemu_img_does()
    {
        using var q = new QemuTools();
        MakeChain(q, "a.qcow2");
        File.Copy(q.PathOf("a.qcow2"), q.PathOf("b.qcow2"));
        File.Delete(q.PathOf("old.raw")); // -u needs neither base
        var r = await UrlDiskAsync(q, "rebase", "-u", "-b", "new.raw", "-F", "raw", "a.qcow2");
        Assert.True(r.ExitCode == 0, r.ToString());
        q.Img("rebase", "-u", "-b", "new.raw", "-F", "raw", "b.qcow2");
        q.Img("check", "a.qcow2");
        Assert.True(File.ReadAllBytes(q.PathOf("a.qcow2")).AsSpan().SequenceEqual(File.ReadAllBytes(q.PathOf("b.qcow2"))), "differs from qemu-img rebase -u");
    }

    [Fact]
    public async Task Bad_input_is_refused_in_one_line_with_nothing_changed()
    {
        using var q = new QemuTools();
        MakeChain(q, "a.qcow2");
        byte[] image = File.ReadAllBytes(q.PathOf("a.qcow2"));
        string url = fixture.Server.HttpUrl(fixture.Server.Put($"rebase-{Guid.NewGuid():N}/a.qcow2", image));
        foreach (var (args, words) in new (string[], string)[]
        {
            (["rebase", "-b", "new.raw", "a.qcow2"], "-F"),
            (["rebase", "-u", "-b", "new.raw", "a.qcow2"], "-F"),
            (["rebase", "a.qcow2"], "-b"),
            (["rebase", "-b", "new.raw", "-F", "raw", "old.raw"], "raw image"),
            (["rebase", "-u", "-b", "new.raw", "-F", "raw", url], "remote"),
            (["rebase", "-b", "missing.raw", "-F", "raw", "a.qcow2"], "missing.raw"),
            (["rebase", "-t", "fast", "-b", "new.raw", "-F", "raw", "a.qcow2"], "Invalid cache option: fast"),
        })
        {
            var r = await UrlDiskAsync(q, args);
            Assert.Equal(1, r.ExitCode);
            Assert.Single(CliAssert.Fails(r, words).Split('\n'));
        }

        Assert.True(image.AsSpan().SequenceEqual(File.ReadAllBytes(q.PathOf("a.qcow2"))), "a refused rebase changed the image");
    }
}
