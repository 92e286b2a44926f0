using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>
/// <c>-q</c> and <c>-p</c> on check and compare, typed as a qemu-img user would: with <c>-q</c> qemu-img prints
/// nothing on stdout (in either output format) and scripts read the exit code; <c>compare -p</c> shows progress and
/// still ends with the verdict.
/// </summary>
public sealed class QuietAndProgressTests
{
    [Theory]
    [InlineData("check -q a.qcow2")]
    [InlineData("check -q --output json a.qcow2")]
    [InlineData("check -q leaky.qcow2")]
    [InlineData("check -q --output=json leaky.qcow2")]
    [InlineData("compare -q a.qcow2 a-copy.qcow2")]
    [InlineData("compare -q a.qcow2 top.qcow2")]
    [InlineData("compare -q -s a.qcow2 longer.raw")]
    public async Task Quiet_prints_nothing_and_exits_as_qemu_img(string command)
    {
        string[] args = command.Split(' ');
        using var temp = await ImagesAsync();
        var q = await ProcessRunner.RunAsync(ProcessRunner.RequireTool("qemu-img", "qemu-utils"), args, workingDirectory: temp.Path);
        var u = await UrlDiskCli.RunAsync(args, workingDirectory: temp.Path);
        Assert.Equal("", q.Stdout);
        Assert.True(u.ExitCode == q.ExitCode && u.Stdout == "", $"qemu-img: {q}\nurldisk: {u}");
    }

    [Theory]
    [InlineData("a.qcow2", "a-copy.qcow2", "Images are identical.")]
    [InlineData("a.qcow2", "top.qcow2", "Content mismatch at offset 2097152!")]
    public async Task Compare_p_shows_progress_and_the_verdict(string first, string second, string verdict)
    {
        using var temp = await ImagesAsync();
        var q = await ProcessRunner.RunAsync(ProcessRunner.RequireTool("qemu-img", "qemu-utils"), ["compare", "-p", first, second], workingDirectory: temp.Path);
        var u = await UrlDiskCli.RunAsync(["compare", "-p", first, second], workingDirectory: temp.Path);
        Assert.Contains(verdict, q.Stdout, StringComparison.Ordinal);
        Assert.True(u.ExitCode == q.ExitCode, $"qemu-img: {q}\nurldisk: {u}");
        Assert.Contains("/100%)", u.Stdout, StringComparison.Ordinal);
        Assert.EndsWith(verdict + "\n", u.Stdout, StringComparison.Ordinal);
    }

    private static async Task<TempDir> ImagesAsync()
    {
        var temp = new TempDir("urldisk-quiet");
        foreach (string[] args in new[]
        {
            new[] { "qemu-img", "create", "-q", "-f", "qcow2", "a.qcow2", "4M" },
            ["qemu-io", "-c", "write -P 0x11 0 1M", "a.qcow2"],
            ["qemu-img", "convert", "-O", "qcow2", "a.qcow2", "a-copy.qcow2"],
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", "top.qcow2"],
            ["qemu-io", "-c", "write -P 0x22 2M 64k", "top.qcow2"],
            ["qemu-img", "convert", "-O", "raw", "a.qcow2", "longer.raw"],
            ["qemu-img", "resize", "-q", "-f", "raw", "longer.raw", "8M"],
            // Lazy refcounts and a writer that dies: leaked clusters (check exits 3).
            ["qemu-img", "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", "leaky.qcow2", "4M"],
        })
        {
            var r = await ProcessRunner.RunAsync(ProcessRunner.RequireTool(args[0], "qemu-utils"), args[1..], workingDirectory: temp.Path);
            Assert.True(r.ExitCode == 0, r.ToString());
        }

        var abort = await ProcessRunner.RunAsync(ProcessRunner.RequireTool("qemu-io", "qemu-utils"), ["-c", "write -P 5 0 128k", "-c", "abort", "leaky.qcow2"], workingDirectory: temp.Path);
        Assert.NotEqual(0, abort.ExitCode);
        return temp;
    }
}
