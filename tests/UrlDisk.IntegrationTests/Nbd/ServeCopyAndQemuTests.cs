using System.Text.Json.Nodes;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary><c>urldisk serve</c> as a child process under nbdcopy, qemu-img and qemu-io, comparing bytes.</summary>
public class ServeCopyAndQemuTests
{
    private const int MiB = 1 << 20;

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task Nbdcopy_reads_the_export_byte_for_byte(int connections)
    {
        using var dir = new NbdTempDir();
        string image = dir.File("src.raw");
        var expected = NbdTool.CreateSparseFile(image, 48 * MiB, (0, 4096), (3 * MiB, 5 * MiB), (40 * MiB, 3 * MiB + 512));
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--read-only", "--shared", connections.ToString(), "--persistent", image);

        string copy = dir.File("copy.raw");
        (await NbdTool.RunAsync("nbdcopy", ["-C", connections.ToString(), "--requests", "16", serve.Uri, copy])).EnsureSuccess();
        Assert.Equal(expected, File.ReadAllBytes(copy));
        Assert.Equal(0, await serve.StopAsync());
    }

    [Fact]
    public async Task Nbdcopy_writes_into_a_writable_export_and_sigterm_flushes_and_exits_0()
    {
        using var dir = new NbdTempDir();
        string target = dir.File("target.raw");
        NbdTool.CreateSparseFile(target, 24 * MiB, (0, 24 * MiB)); // full of old data, so zeroing is visible
        string source = dir.File("source.raw");
        var expected = NbdTool.CreateSparseFile(source, 24 * MiB, (MiB, 3 * MiB), (20 * MiB, 65536));
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--shared", "4", "--persistent", target);

        (await NbdTool.RunAsync("nbdcopy", ["-C", "4", source, serve.Uri])).EnsureSuccess();
        Assert.Equal(0, await serve.StopAsync());
        Assert.Equal(expected, File.ReadAllBytes(target));
    }

    [Fact]
    public async Task Qemu_img_info_compare_and_map_over_nbd_unix()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, 8 * MiB, (2 * MiB, MiB));
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--read-only", "--shared", "0", "--persistent", image);

        var info = JsonNode.Parse((await NbdTool.RunAsync("qemu-img", ["info", "--output=json", serve.Uri])).EnsureSuccess().Stdout)!;
        Assert.Equal(8L * MiB, (long)info["virtual-size"]!);
        Assert.Equal("raw", (string?)info["format"]);

        var compare = (await NbdTool.RunAsync("qemu-img", ["compare", "-f", "raw", "-F", "raw", serve.Uri, image])).EnsureSuccess();
        Assert.Contains("Images are identical", compare.Stdout);

        var map = JsonNode.Parse((await NbdTool.RunAsync("qemu-img", ["map", "--output=json", "-f", "raw", serve.Uri])).EnsureSuccess().Stdout)!.AsArray();
        var got = map.Select(e => ((long)e!["start"]!, (long)e["length"]!, (bool)e["data"]!, (bool)e["zero"]!)).ToList();
        Assert.Equal([(0L, 2L * MiB, false, true), (2L * MiB, MiB, true, false), (3L * MiB, 5L * MiB, false, true)], got);

        // A byte changed behind the server's back is seen by the next compare.
        using (var f = new FileStream(image, FileMode.Open, FileAccess.Write))
        {
            f.Position = 2 * MiB;
            f.WriteByte(0x5a);
        }

        var copy = dir.File("copy.raw");
        (await NbdTool.RunAsync("qemu-img", ["convert", "-f", "raw", "-O", "raw", serve.Uri, copy])).EnsureSuccess();
        Assert.Equal(File.ReadAllBytes(image), File.ReadAllBytes(copy));
        Assert.Equal(0, await serve.StopAsync());
    }

    [Fact]
    public async Task Qemu_io_writes_through_nbd_into_a_local_raw_file()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("rw.raw");
        NbdTool.CreateSparseFile(image, 4 * MiB);
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--persistent", image);
        Assert.Contains("read-write", serve.Stderr);

        (await NbdTool.RunAsync("qemu-io", ["-f", "raw", "-c", "write -P 0xab 4096 65536", "-c", "write -z 8192 4096", "-c", "write -f -P 0xcd 1048575 2", "-c", "flush", serve.Uri])).EnsureSuccess();
        var read = (await NbdTool.RunAsync("qemu-io", ["-f", "raw", "-r", "-c", "read -P 0xab 4096 4096", "-c", "read -P 0 8192 4096", serve.Uri])).EnsureSuccess();
        Assert.DoesNotContain("Pattern verification failed", read.Stdout);
        Assert.Equal(0, await serve.StopAsync());

        var bytes = File.ReadAllBytes(image);
        Assert.All(bytes[4096..8192], b => Assert.Equal(0xab, b));
        Assert.All(bytes[8192..12288], b => Assert.Equal(0, b));
        Assert.All(bytes[12288..(4096 + 65536)], b => Assert.Equal(0xab, b));
        Assert.Equal(0xcd, bytes[1048575]);
        Assert.Equal(0xcd, bytes[1048576]);
        Assert.Equal(0, bytes[1048577]);
        Assert.All(bytes[..4096], b => Assert.Equal(0, b));
    }

    [Fact]
    public async Task Read_only_option_refuses_qemu_io_writes_and_keeps_the_file()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("ro.raw");
        var before = NbdTool.CreateSparseFile(image, MiB, (0, 4096));
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--read-only", "--persistent", image);
        var write = await NbdTool.RunAsync("qemu-io", ["-f", "raw", "-c", "write -P 0x11 0 4096", serve.Uri]);
        // qemu sees NBD_FLAG_READ_ONLY and refuses to open for writing.
        Assert.NotEqual(0, write.ExitCode);
        Assert.Contains("Permission denied", write.Stdout + write.Stderr);
        Assert.Equal(0, await serve.StopAsync());
        Assert.Equal(before, File.ReadAllBytes(image));
    }
}
