using System.Security.Cryptography;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary><c>urldisk amend</c> against <c>qemu-img amend</c> on copies of the same image.</summary>
public sealed class AmendTests
{
    [Fact]
    public async Task Downgrade_to_0_10_writes_the_bytes_qemu_img_writes_and_qemu_io_reads_it()
    {
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "qcow2", "v3.qcow2", "4M");
        q.Io("-c", "write -z 0 64k", "-c", "write -P 0x01 64k 64k", "-c", "write -z -u 128k 64k", "-c", "write -P 0x02 1M 64k", "-c", "write -z 1M 4k", "v3.qcow2");
        File.Copy(q.PathOf("v3.qcow2"), q.PathOf("urldisk.qcow2"));
        File.Copy(q.PathOf("v3.qcow2"), q.PathOf("qemu.qcow2"));
        q.Img("amend", "-o", "compat=0.10", "qemu.qcow2");
        var r = await UrlDiskCli.RunAsync("amend", "-o", "compat=0.10", q.PathOf("urldisk.qcow2"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(File.ReadAllBytes(q.PathOf("qemu.qcow2")), File.ReadAllBytes(q.PathOf("urldisk.qcow2")));
        q.Img("check", "urldisk.qcow2");
        Assert.Contains("compat: 0.10", q.Img("info", "urldisk.qcow2"), StringComparison.Ordinal);
        q.Io("-c", "read -P 0 0 64k", "-c", "read -P 0x01 64k 64k", "-c", "read -P 0 1M 4k", "-c", "read -P 0x02 1052672 60k", "urldisk.qcow2");
        QemuTools.AssertSameBytes(q.QemuRaw("v3.qcow2"), q.QemuRaw("urldisk.qcow2"));
    }

    [Fact]
    public async Task Upgrade_and_lazy_refcounts_read_as_qemu_img_info_says()
    {
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "qcow2", "-o", "compat=0.10", "vm.qcow2", "2M");
        q.Io("-c", "write -P 0x07 0 1M", "vm.qcow2");
        var data = q.QemuRaw("vm.qcow2");
        var r = await UrlDiskCli.RunAsync("amend", "-o", "compat=1.1,lazy_refcounts=on", q.PathOf("vm.qcow2"));
        Assert.True(r.ExitCode == 0, r.ToString());
        string info = q.Img("info", "vm.qcow2");
        Assert.Contains("compat: 1.1", info, StringComparison.Ordinal);
        Assert.Contains("lazy refcounts: true", info, StringComparison.Ordinal);
        q.Img("check", "vm.qcow2");
        q.Io("-c", "write -P 0x08 1M 64k", "vm.qcow2");
        Assert.Equal(0, (await UrlDiskCli.RunAsync("amend", "-o", "lazy_refcounts=off", q.PathOf("vm.qcow2"))).ExitCode);
        Assert.Contains("lazy refcounts: false", q.Img("info", "vm.qcow2"), StringComparison.Ordinal);
        q.Img("check", "vm.qcow2");
        q.Io("-c", "read -P 0x07 0 1M", "-c", "read -P 0x08 1M 64k", "vm.qcow2");
        Assert.Equal(data.AsSpan(0, 1 << 20).ToArray(), q.QemuRaw("vm.qcow2").AsSpan(0, 1 << 20).ToArray());
    }

    [Fact]
    public async Task Unsupported_requests_are_one_line_exit_1_and_change_nothing()
    {
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "raw", "base.raw", "1M");
        q.Img("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "overlay.qcow2");
        q.Io("-c", "write -z 0 64k", "overlay.qcow2");
        string overlay = q.PathOf("overlay.qcow2");
        var hash = SHA256.HashData(File.ReadAllBytes(overlay));
        foreach (var (args, message) in new (string[], string)[]
        {
            (["amend", "-o", "compat=0.10", overlay], "zero clusters over its backing file"),
            (["amend", "-o", "compat=0.10,lazy_refcounts=on", overlay], "Lazy refcounts only supported with compatibility level 1.1"),
            (["amend", "-o", "foo=1", overlay], "Invalid parameter 'foo'; allowed: compat (0.10 or 1.1), lazy_refcounts (on or off)"),
            (["amend", "-o", "size=8M", overlay], "urldisk resize"),
            (["amend", "-o", "compat=2", overlay], "use 0.10 (v2) or 1.1 (v3)"),
            (["amend", overlay], "give the options to change with -o"),
            (["amend", "-o", "compat=1.1", q.PathOf("base.raw")], "does not support option amendment"),
        })
        {
            var r = await UrlDiskCli.RunAsync(args);
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.Contains(message, r.Stderr, StringComparison.Ordinal);
            Assert.Single(r.Stderr.Trim().Split('\n'));
        }

        Assert.Equal(hash, SHA256.HashData(File.ReadAllBytes(overlay)));
        var help = await UrlDiskCli.RunAsync("amend", "-o", "help", overlay);
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("compat=<str>", help.Stdout, StringComparison.Ordinal);
        Assert.Contains("lazy_refcounts=<bool (on/off)>", help.Stdout, StringComparison.Ordinal);
    }
}
