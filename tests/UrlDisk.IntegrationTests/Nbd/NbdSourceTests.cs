using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary><c>nbd://</c> and <c>nbd+unix://</c> sources, served by qemu-nbd, read by info, map, convert and a qcow2 overlay.</summary>
public class NbdSourceTests
{
    private const int MiB = 1 << 20;

    /// <summary>qemu-nbd in the background (--fork returns once it listens); killed on dispose.</summary>
    private sealed class QemuNbd(string pidFile) : IDisposable
    {
        public static async Task<QemuNbd> StartAsync(string pidFile, params string[] args)
        {
            (await NbdTool.RunAsync("qemu-nbd", ["--fork", "--persistent", "--pid-file", pidFile, .. args])).EnsureSuccess();
            return new QemuNbd(pidFile);
        }

        public void Dispose() => StopQemuNbd(pidFile);
    }

    [Fact]
    public async Task Info_convert_and_map_read_a_qemu_nbd_export_over_a_unix_socket()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        var bytes = NbdTool.CreateSparseFile(image, 8 * MiB, (0, 64 * 1024), (5 * MiB, MiB + 512));
        string socket = dir.File("q");
        using var server = await QemuNbd.StartAsync(dir.File("pid"), "-r", "-f", "raw", "-x", "disk one", "-k", socket, image);
        string url = $"nbd+unix:///disk%20one?socket={socket}";

        var info = await UrlDiskCli.RunAsync("info", "--output", "json", url);
        Assert.True(info.ExitCode == 0, info.ToString());
        var json = JsonNode.Parse(info.Stdout)!;
        Assert.Equal(8L * MiB, (long)json["virtual-size"]!);
        Assert.Equal("raw", (string?)json["format"]);

        string copy = dir.File("copy.raw");
        var convert = await UrlDiskCli.RunAsync("convert", "-O", "raw", url, copy);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal(bytes, File.ReadAllBytes(copy));

        // Block status comes from the server: the holes between the data are reported as holes.
        var map = await UrlDiskCli.RunAsync("map", "--output", "json", url);
        Assert.True(map.ExitCode == 0, map.ToString());
        var runs = JsonNode.Parse(map.Stdout)!.AsArray();
        Assert.Contains(runs, r => (long)r!["start"]! == 64 * 1024 && !(bool)r["data"]!);
        Assert.Contains(runs, r => (long)r!["start"]! == 5 * MiB && (bool)r["data"]!);
    }

    [Fact]
    public async Task A_qcow2_overlay_backed_by_an_nbd_export_over_tcp_reads_and_writes_locally()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("base.qcow2");
        string raw = dir.File("base.raw");
        var bytes = NbdTool.CreateSparseFile(raw, 4 * MiB, (0, 4 * MiB));
        (await NbdTool.RunAsync("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, image])).EnsureSuccess();
        int port = FreePort.Get();
        using var server = await QemuNbd.StartAsync(dir.File("pid"), "-r", "-f", "qcow2", "-b", "127.0.0.1", "-p", port.ToString(), "-x", "base", image);
        string url = $"nbd://127.0.0.1:{port}/base";

        string overlay = dir.File("top.qcow2");
        var create = await UrlDiskCli.RunAsync("create", "-f", "qcow2", "-F", "raw", "-b", url, overlay);
        Assert.True(create.ExitCode == 0, create.ToString());
        (await NbdTool.RunAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 9 1M 64k", overlay])).EnsureSuccess();

        string copy = dir.File("copy.raw");
        var convert = await UrlDiskCli.RunAsync("convert", "-O", "raw", overlay, copy);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        var expected = (byte[])bytes.Clone();
        expected.AsSpan(MiB, 64 * 1024).Fill(9);
        Assert.Equal(expected, File.ReadAllBytes(copy));

        // qemu-img reads the same overlay through its own nbd driver and agrees.
        (await NbdTool.RunAsync("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", overlay, copy])).EnsureSuccess();
    }

    [Fact]
    public async Task Urldisk_reads_its_own_export_and_a_wrong_export_name_is_one_clear_error()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        var bytes = NbdTool.CreateSparseFile(image, 2 * MiB, (4096, 8192));
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "-x", "mine", "--read-only", "--persistent", image);

        string copy = dir.File("copy.raw");
        var convert = await UrlDiskCli.RunAsync("convert", "-O", "raw", serve.Uri, copy);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal(bytes, File.ReadAllBytes(copy));

        var wrong = await UrlDiskCli.RunAsync("info", $"nbd+unix:///other?socket={dir.File("s")}");
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("no export named 'other'", wrong.Stderr);

        var bad = await UrlDiskCli.RunAsync("info", "nbd+unix:///x");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("socket=", bad.Stderr);
    }

    /// <summary>Ends a qemu-nbd started with --fork --pid-file.</summary>
    internal static void StopQemuNbd(string pidFile)
    {
        if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out int pid))
        {
            try
            {
                using var p = System.Diagnostics.Process.GetProcessById(pid);
                p.Kill();
                p.WaitForExit(10_000);
            }
            catch (ArgumentException)
            {
            }
        }
    }
}
