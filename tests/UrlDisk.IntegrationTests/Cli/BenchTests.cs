using System.Text.RegularExpressions;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary><c>urldisk bench</c>: qemu-img bench's flags and lines; reads over a URL, writes to a local file.</summary>
public sealed partial class BenchTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    [Theory]
    [InlineData("-c", "100")]
    [InlineData("-c", "50", "-d", "4", "-s", "64k", "-o", "1M", "-S", "128k")]
    [InlineData("-c", "40", "-s", "1M", "-S", "1M", "-d", "2")]
    public async Task Reads_over_http_print_qemu_img_benchs_lines(params string[] flags)
    {
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "qcow2", "disk.qcow2", "5M");
        q.Io("-c", "write -P 0x5a 0 5M", "disk.qcow2");
        string[] qemuArgs = ["bench", "-f", "qcow2", .. flags, "disk.qcow2"];
        string expected = q.Img(qemuArgs).Split('\n')[0];
        string url = fixture.Server.HttpUrl(fixture.Server.Put($"bench/{Guid.NewGuid():N}.qcow2", File.ReadAllBytes(q.PathOf("disk.qcow2"))));
        var r = await UrlDiskCli.RunAsync(["bench", .. flags, url]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.Stdout.TrimEnd('\n').Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.Equal(expected, lines[0]);
        Assert.Matches(RunCompleted(), lines[1]);
    }

    [Fact]
    public async Task Writes_fill_a_local_image_with_the_pattern_and_leave_it_clean()
    {
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "qcow2", "scratch.qcow2", "1M");
        var r = await UrlDiskCli.RunAsync("bench", "-w", "-c", "300", "-d", "8", "--pattern=0xaa", "--flush-interval=50", q.PathOf("scratch.qcow2"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("Sending 300 write requests, 4096 bytes each, 8 in parallel (starting at offset 0, step size 4096)\nSending flush every 50 requests", string.Join('\n', r.Stdout.Split('\n')[..2]));
        q.Img("check", "scratch.qcow2");
        q.Io("-c", "read -P 0xaa 0 1M", "scratch.qcow2");
    }

    [Fact]
    public async Task Bad_requests_are_one_line_and_exit_1()
    {
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "raw", "disk.raw", "1M");
        string disk = q.PathOf("disk.raw");
        string url = fixture.Server.HttpUrl(fixture.Server.Put($"bench/{Guid.NewGuid():N}.raw", new byte[1 << 20]));
        foreach (var (args, message) in new (string[], string)[]
        {
            (["bench", "-d", "0", disk], "-d/--depth: '0' is not allowed"),
            (["bench", "--flush-interval=4", disk], "--flush-interval is only available in write tests"),
            (["bench", "-w", "-d", "8", "--flush-interval=4", disk], "Flush interval can't be smaller than depth"),
            (["bench", "-w", "--pattern=300", disk], "Invalid pattern byte specified"),
            (["bench", "-w", "-c", "1", url], "write tests need a local image"),
            (["bench", "-c", "1", "-o", "2M", disk], "Failed request"),
        })
        {
            var r = await UrlDiskCli.RunAsync(args);
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.Contains(message, r.Stderr, StringComparison.Ordinal);
            Assert.Single(r.Stderr.Trim().Split('\n'));
        }
    }

    [GeneratedRegex(@"^Run completed in \d+\.\d{3} seconds\.$")]
    private static partial Regex RunCompleted();
}
