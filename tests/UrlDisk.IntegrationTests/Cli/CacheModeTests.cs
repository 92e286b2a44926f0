using System.Security.Cryptography;
using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>
/// qemu-img's cache flags (<c>-t CACHE</c>, <c>-T SRC_CACHE</c>) on every verb that takes them: a bad mode is
/// refused with qemu-img's words and exit code and changes nothing, every mode is taken, and <c>-t</c> means what
/// the README says: <c>unsafe</c> leaves the output to the page cache, the other modes flush it to disk (seen with
/// strace).
/// </summary>
public sealed class CacheModeTests
{
    private static readonly string[] Modes = ["none", "writeback", "writethrough", "directsync", "unsafe"];

    public static TheoryData<string> BadModeCommands() =>
    [
        "amend -t bogus -o lazy_refcounts=on a.qcow2",
        "bench -c 1 -t bogus a.qcow2",
        "commit -t bogus top.qcow2",
        "convert -t bogus -O raw a.qcow2 out.raw",
        "convert -T bogus -O raw a.qcow2 out.raw",
        "rebase -t bogus -u -b a.qcow2 -F qcow2 top.qcow2",
        "rebase -T bogus -u -b a.qcow2 -F qcow2 top.qcow2",
        "check -T bogus a.qcow2",
        "compare -T bogus a.qcow2 top.qcow2",
    ];

    [Theory]
    [MemberData(nameof(BadModeCommands))]
    public async Task A_bad_cache_mode_is_qemu_imgs_error_and_exit_code_and_changes_nothing(string command)
    {
        using var temp = await ImagesAsync();
        string[] args = command.Split(' ');
        var before = Hashes(temp);
        var q = await ProcessRunner.RunAsync(ProcessRunner.RequireTool("qemu-img", "qemu-utils"), args, workingDirectory: temp.Path);
        Assert.True(q.ExitCode != 0 && q.Stderr.StartsWith("qemu-img: ", StringComparison.Ordinal), q.ToString());
        File.Delete(temp.File("out.raw")); // qemu-img convert -t creates the output before it reads -t; urldisk does not
        Assert.Equal(before, Hashes(temp));

        var u = await UrlDiskCli.RunAsync(args, workingDirectory: temp.Path);
        Assert.True(u.ExitCode == q.ExitCode, $"qemu-img: {q}\nurldisk: {u}");
        Assert.Single(u.Stderr.Trim().Split('\n'));
        // qemu-img's words (bench's omit the mode; urldisk names it and the modes allowed).
        Assert.Contains(q.Stderr["qemu-img: ".Length..].Trim(), u.Stderr, StringComparison.Ordinal);
        Assert.Contains("bogus (allowed: none, writeback, writethrough, directsync, unsafe)", u.Stderr, StringComparison.Ordinal);
        Assert.Equal(before, Hashes(temp));
        Assert.False(File.Exists(temp.File("out.raw")));
    }

    [Fact]
    public async Task Check_and_compare_take_every_source_cache_mode_with_qemu_imgs_output()
    {
        using var temp = await ImagesAsync();
        foreach (string mode in Modes)
        {
            foreach (string[] args in new[] { new[] { "check", "-T", mode, "a.qcow2" }, ["compare", "-T", mode, "a.qcow2", "top.qcow2"] })
            {
                var q = await ProcessRunner.RunAsync(ProcessRunner.RequireTool("qemu-img", "qemu-utils"), args, workingDirectory: temp.Path);
                var u = await UrlDiskCli.RunAsync(args, workingDirectory: temp.Path);
                Assert.True(q.ExitCode == u.ExitCode && q.Stdout == u.Stdout, $"qemu-img: {q}\nurldisk: {u}");
            }
        }
    }

    [Theory]
    [InlineData(null, 0)]
    [InlineData("unsafe", 0)]
    [InlineData("writeback", 1)]
    [InlineData("writethrough", 1)]
    [InlineData("directsync", 1)]
    [InlineData("none", 1)]
    public async Task Convert_t_flushes_the_output_unless_unsafe(string? mode, int atLeast)
    {
        using var temp = await ImagesAsync();
        string strace = ProcessRunner.RequireTool("strace", "strace");
        string launcher = await UrlDiskCli.LauncherAsync();
        string[] convert = mode is null ? ["convert", "-O", "raw", "a.qcow2", "out.raw"] : ["convert", "-t", mode, "-O", "raw", "a.qcow2", "out.raw"];
        var r = await ProcessRunner.RunAsync(strace, ["-f", "-y", "-e", "trace=fsync,fdatasync", "-o", temp.File("trace"), launcher, .. convert], workingDirectory: temp.Path);
        Assert.True(r.ExitCode == 0, r.ToString());
        int syncs = File.ReadAllLines(temp.File("trace")).Count(l => l.Contains("sync(", StringComparison.Ordinal) && l.Contains(temp.Path, StringComparison.Ordinal));
        Assert.True(atLeast == 0 ? syncs == 0 : syncs >= atLeast, $"-t {mode ?? "(default unsafe)"}: {syncs} fsync/fdatasync calls on files in the temp dir\n{File.ReadAllText(temp.File("trace"))}");
        var compare = await QemuImg.RunAsync("compare", temp.File("a.qcow2"), temp.File("out.raw"));
        Assert.True(compare.ExitCode == 0, compare.ToString());
    }

    private static async Task<TempDir> ImagesAsync()
    {
        var temp = new TempDir("urldisk-cache-mode");
        foreach (string[] args in new[]
        {
            new[] { "qemu-img", "create", "-q", "-f", "qcow2", "a.qcow2", "4M" },
            ["qemu-io", "-c", "write -P 0x11 0 1M", "a.qcow2"],
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", "top.qcow2"],
            ["qemu-io", "-c", "write -P 0x22 2M 64k", "top.qcow2"],
        })
        {
            var r = await ProcessRunner.RunAsync(ProcessRunner.RequireTool(args[0], "qemu-utils"), args[1..], workingDirectory: temp.Path);
            Assert.True(r.ExitCode == 0, r.ToString());
        }

        return temp;
    }

    private static string Hashes(TempDir temp) => string.Join(',', Directory.GetFiles(temp.Path).Order(StringComparer.Ordinal).Select(f => Path.GetFileName(f) + ":" + Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))));
}
