using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary><c>urldisk dd</c> against <c>qemu-img dd</c> on the same inputs: the same output bytes and size, from a file and a URL.</summary>
public sealed class DdTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    [Theory]
    [InlineData("bs=1M", "count=2")]
    [InlineData("bs=1M", "skip=1")]
    [InlineData("bs=1M", "count=2", "skip=1")]
    [InlineData("bs=1000", "count=3")]
    [InlineData("bs=1000", "skip=3", "count=5")]
    [InlineData("count=3")]
    [InlineData("bs=1M", "skip=5")]
    [InlineData("bs=3M")]
    public async Task Output_is_what_qemu_img_dd_writes_from_a_file_and_a_url(params string[] operands)
    {
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "qcow2", "in.qcow2", "5M");
        q.Io("-c", "write -P 0x5a 0 1500k", "-c", "write -P 0x6b 3M 1M", "in.qcow2");
        string[] qemuArgs = ["dd", "-f", "qcow2", .. operands, "if=in.qcow2", "of=qemu.raw"];
        q.Img(qemuArgs);
        var expected = File.ReadAllBytes(q.PathOf("qemu.raw"));
        string url = fixture.Server.HttpUrl(fixture.Server.Put($"dd/{Guid.NewGuid():N}.qcow2", File.ReadAllBytes(q.PathOf("in.qcow2"))));
        foreach (string input in new[] { q.PathOf("in.qcow2"), url })
        {
            string output = q.PathOf($"urldisk-{Guid.NewGuid():N}.raw");
            var r = await UrlDiskCli.RunAsync(["dd", .. operands, "if=" + input, "of=" + output]);
            Assert.True(r.ExitCode == 0, r.ToString());
            QemuTools.AssertSameBytes(expected, File.ReadAllBytes(output));
        }
    }

    [Fact]
    public async Task Qcow2_output_passes_qemu_img_check_and_holds_the_same_bytes()
    {
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "raw", "in.raw", "4M");
        q.Io("-f", "raw", "-c", "write -P 0x21 1M 2M", "in.raw");
        q.Img("dd", "-f", "raw", "-O", "qcow2", "bs=64k", "skip=8", "count=40", "if=in.raw", "of=qemu.qcow2");
        var r = await UrlDiskCli.RunAsync("dd", "-O", "qcow2", "bs=64k", "skip=8", "count=40", "if=" + q.PathOf("in.raw"), "of=" + q.PathOf("out.qcow2"));
        Assert.True(r.ExitCode == 0, r.ToString());
        q.Img("check", "out.qcow2");
        QemuTools.AssertSameBytes(q.QemuRaw("qemu.qcow2"), q.QemuRaw("out.qcow2")); // sizes too; qemu-img dd allocates zeros, urldisk leaves holes
    }

    [Fact]
    public async Task Bad_operands_are_one_line_exit_1_and_no_output()
    {
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "raw", "in.raw", "1M");
        string input = "if=" + q.PathOf("in.raw"), output = "of=" + q.PathOf("out.raw");
        foreach (var (args, message) in new (string[], string)[]
        {
            (["dd", "bs=1M", "skip=2", input, output], "cannot skip to specified offset"),
            (["dd", "foo=1", input, output], "unrecognized operand 'foo'"),
            (["dd", input], "Must specify both input and output files"),
            (["dd", "bs=0", input, output], "bs=0 is not allowed"),
            (["dd", "-O", "vmdk", input, output], "allowed: raw, qcow2"),
        })
        {
            var r = await UrlDiskCli.RunAsync(args);
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.Contains(message, r.Stderr, StringComparison.Ordinal);
            Assert.Single(r.Stderr.Trim().Split('\n'));
            Assert.False(File.Exists(q.PathOf("out.raw")));
        }
    }
}
