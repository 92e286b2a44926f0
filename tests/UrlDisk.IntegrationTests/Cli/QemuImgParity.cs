using System.Globalization;
using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>Checks the flag tests share: the same command through qemu-img and urldisk, then qemu-img's verdict.</summary>
internal static class QemuImgParity
{
    /// <summary>Bytes the file takes on disk (st_blocks × 512).</summary>
    public static async Task<long> AllocatedAsync(string path)
    {
        var r = await ProcessRunner.RunAsync("stat", ["-c", "%b", path]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return long.Parse(r.Stdout.Trim(), CultureInfo.InvariantCulture) * 512;
    }

    public static async Task<ProcessResult> QemuImgOkAsync(params string[] args)
    {
        var r = await QemuImg.RunAsync(args);
        Assert.True(r.ExitCode == 0, $"qemu-img {string.Join(' ', args)}: {r}");
        return r;
    }

    public static async Task<ProcessResult> UrlDiskOkAsync(params string[] args)
    {
        var r = await UrlDiskCli.RunAsync(args);
        Assert.True(r.ExitCode == 0, $"urldisk {string.Join(' ', args)}: {r}");
        return r;
    }

    /// <summary>qemu-img compare says the two read the same (exit 0).</summary>
    public static Task SameContentAsync(string a, string b) => QemuImgOkAsync("compare", a, b);

    /// <summary>The two files hold the same bytes (raw outputs: size included).</summary>
    public static async Task SameBytesAsync(string a, string b)
    {
        byte[] x = await File.ReadAllBytesAsync(a);
        byte[] y = await File.ReadAllBytesAsync(b);
        Assert.True(x.AsSpan().SequenceEqual(y), $"{a} ({x.Length} bytes) and {b} ({y.Length} bytes) differ");
    }

    /// <summary>qemu-img check finds nothing wrong (exit 0).</summary>
    public static Task CheckCleanAsync(string qcow2) => QemuImgOkAsync("check", qcow2);

    /// <summary>A qcow2 image made by qemu-img and written by qemu-io (WRITE is qemu-io commands).</summary>
    public static async Task QemuIoAsync(string image, params string[] commands)
    {
        var args = new List<string>();
        foreach (string c in commands)
        {
            args.Add("-c");
            args.Add(c);
        }

        args.Add(image);
        var r = await ProcessRunner.RunAsync(ProcessRunner.RequireTool("qemu-io", "qemu-utils"), args);
        Assert.True(r.ExitCode == 0, r.ToString());
    }
}
