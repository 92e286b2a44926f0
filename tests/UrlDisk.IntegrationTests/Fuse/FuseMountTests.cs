using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Nbd;

namespace UrlDisk.IntegrationTests.Fuse;

/// <summary><c>urldisk mount</c> on the real kernel: images behind nginx and local overlays as plain files, read and written by real programs.</summary>
public class FuseMountTests
{
    private const int MiB = 1 << 20;

    [FuseFact]
    public async Task Http_image_mounted_on_a_file_reads_like_the_source_and_sigterm_unmounts()
    {
        await using var nginx = await NginxServer.StartAsync();
        var content = ImageFactory.WithZeroRegions(16 * MiB, seed: 31);
        string path = nginx.Put("fuse/disk.raw", content);
        using var dir = new TempDir("fuse");
        string source = dir.File("source.raw");
        await File.WriteAllBytesAsync(source, content);
        string file = dir.File("disk.raw");
        await File.WriteAllBytesAsync(file, []);

        await using var mount = await MountProcess.StartAsync(nginx.HttpUrl(path), file);
        Assert.Contains("(read-only, 16777216 bytes)", mount.Stderr);
        Assert.True(Mounts.IsMounted(file));
        Assert.Equal(16L * MiB, new FileInfo(file).Length);

        (await NbdTool.RunAsync("cmp", [source, file])).EnsureSuccess();
        var info = JsonNode.Parse((await QemuImg.RunAsync("info", "--output=json", "-f", "raw", file)).Stdout)!;
        Assert.Equal(16L * MiB, (long)info["virtual-size"]!);
        var compare = await QemuImg.RunAsync("compare", "-f", "raw", "-F", "raw", source, file);
        Assert.True(compare.ExitCode == 0, compare.ToString());

        // A remote image without an overlay is read-only: the kernel refuses writers.
        Assert.ThrowsAny<Exception>(() => File.OpenWrite(file).Dispose());

        Assert.Equal(0, await mount.StopAsync(MountProcess.SigTerm));
        Assert.False(Mounts.IsMounted(file), "the mount outlived SIGTERM");
        Assert.Equal(0, new FileInfo(file).Length); // the empty mountpoint file is back
    }

    [FuseFact]
    public async Task Qcow2_overlay_over_http_in_a_directory_takes_writes_and_fsync_and_checks_clean()
    {
        await using var nginx = await NginxServer.StartAsync();
        var content = ImageFactory.WithZeroRegions(16 * MiB, seed: 32);
        string path = nginx.Put("fuse/base.raw", content);
        using var dir = new TempDir("fuse");
        string overlay = dir.File("vm.qcow2");
        var created = await QemuImg.RunAsync("create", "-q", "-f", "qcow2", "-b", nginx.HttpUrl(path), "-F", "raw", overlay);
        Assert.True(created.ExitCode == 0, created.ToString());
        string mountpoint = dir.Subdirectory("m");

        var expected = (byte[])content.Clone();
        await using (var mount = await MountProcess.StartAsync(overlay, mountpoint, "--copy-on-read"))
        {
            string file = Path.Combine(mountpoint, "vm.raw");
            Assert.Contains("(read-write, 16777216 bytes)", mount.Stderr);
            Assert.Equal(["vm.raw"], Directory.GetFileSystemEntries(mountpoint).Select(Path.GetFileName));
            ImageFactory.AssertSameBytes(content, await File.ReadAllBytesAsync(file), "the overlay's raw view before writes");

            // Writes of several sizes and alignments through dd, each with fsync (which flushes the overlay).
            var rng = new Random(5);
            foreach (var (offset, length) in new (long, int)[] { (0, 4096), (3 * MiB + 512, 70_000), (9 * MiB, 2 * MiB), (16 * MiB - 1000, 1000) })
            {
                var patch = new byte[length];
                rng.NextBytes(patch);
                patch.CopyTo(expected, offset);
                string patchFile = dir.File($"patch-{offset}");
                await File.WriteAllBytesAsync(patchFile, patch);
                (await NbdTool.RunAsync("dd", [$"if={patchFile}", $"of={file}", "bs=64k", "oflag=seek_bytes", $"seek={offset}", "conv=notrunc,fsync", "status=none"])).EnsureSuccess();
            }

            // Past the end of the image: the size is the image's.
            var tooFar = await NbdTool.RunAsync("dd", ["if=/dev/zero", $"of={file}", "bs=4096", "seek=4096", "count=1", "conv=notrunc", "status=none"]);
            Assert.NotEqual(0, tooFar.ExitCode);
            ImageFactory.AssertSameBytes(expected, await File.ReadAllBytesAsync(file), "the raw view after writes");

            var unmount = await UrlDiskCli.RunAsync("unmount", mountpoint + "/"); // a trailing slash names the same mount
            Assert.True(unmount.ExitCode == 0, unmount.ToString());
            Assert.Equal(0, await mount.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.False(Mounts.IsMounted(mountpoint));
        }

        var check = await QemuImg.RunAsync("check", overlay);
        Assert.True(check.ExitCode == 0, check.ToString());
        string expectedFile = dir.File("expected.raw");
        await File.WriteAllBytesAsync(expectedFile, expected);
        var compare = await QemuImg.RunAsync("compare", "-f", "raw", "-F", "qcow2", expectedFile, overlay);
        Assert.True(compare.ExitCode == 0, compare.ToString());
    }

    [FuseFact]
    public async Task Many_concurrent_dd_readers_at_many_offsets_get_their_bytes()
    {
        await using var nginx = await NginxServer.StartAsync();
        var content = ImageFactory.Random(32 * MiB, seed: 33);
        string path = nginx.Put("fuse/many.raw", content);
        using var dir = new TempDir("fuse");
        string file = dir.File("many.raw");
        await File.WriteAllBytesAsync(file, []);
        await using var mount = await MountProcess.StartAsync(nginx.HttpUrl(path), file);

        var rng = new Random(6);
        var readers = Enumerable.Range(0, 24).Select(i =>
        {
            int block = (i % 3) switch { 0 => 4096, 1 => 65536, _ => MiB };
            int count = block == MiB ? 2 : 8;
            long skip = rng.NextInt64(0, (32L * MiB / block) - count);
            string output = dir.File($"out-{i}");
            string[] args = [$"if={file}", $"of={output}", $"bs={block}", $"skip={skip}", $"count={count}", "status=none", .. i % 2 == 0 ? new[] { "iflag=direct" } : []];
            return (Task: NbdTool.RunAsync("dd", args), Offset: skip * block, Length: block * count, Output: output);
        }).ToList();
        await Task.WhenAll(readers.Select(r => r.Task));
        foreach (var r in readers)
        {
            (await r.Task).EnsureSuccess();
            var read = await File.ReadAllBytesAsync(r.Output);
            ImageFactory.AssertSameBytes(content.AsSpan((int)r.Offset, r.Length), read, $"dd at {r.Offset}");
        }

        Assert.Equal(0, await mount.StopAsync(MountProcess.SigInt));
        Assert.False(Mounts.IsMounted(file));
    }

    [FuseFact]
    public async Task Lseek_finds_data_and_holes_and_fallocate_punches_holes_in_a_local_qcow2()
    {
        using var dir = new TempDir("fuse");
        string image = dir.File("sparse.qcow2");
        var created = await QemuImg.RunAsync("create", "-q", "-f", "qcow2", image, "8M");
        Assert.True(created.ExitCode == 0, created.ToString());
        (await NbdTool.RunAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 2M 1M", "-c", "write -P 0x33 6M 64k", image])).EnsureSuccess();
        string file = dir.File("sparse.raw");
        await File.WriteAllBytesAsync(file, []);
        await using var mount = await MountProcess.StartAsync(image, file);

        const string Script = "import os,sys\nfd=os.open(sys.argv[1],os.O_RDONLY)\nfor w,o in ((os.SEEK_DATA,0),(os.SEEK_HOLE,2<<20),(os.SEEK_DATA,3<<20),(os.SEEK_HOLE,6<<20)):\n  print(os.lseek(fd,o,w))\ntry:\n  os.lseek(fd,(6<<20)+65536,os.SEEK_DATA); print('data')\nexcept OSError as e: print(e.errno)\n";
        var seek = (await NbdTool.RunAsync("python3", ["-c", Script, file])).EnsureSuccess();
        Assert.Equal(["2097152", "3145728", "6291456", "6356992", "6"], seek.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        (await NbdTool.RunAsync("fallocate", ["--punch-hole", "--offset", "2097152", "--length", "524288", file])).EnsureSuccess();
        using (var f = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None))
        {
            var buffer = new byte[MiB];
            f.Position = 2 * MiB;
            f.ReadExactly(buffer);
            Assert.True(buffer.AsSpan(0, MiB / 2).IndexOfAnyExcept((byte)0) < 0, "the punched range reads as zeros");
            Assert.True(buffer.AsSpan(MiB / 2).IndexOfAnyExcept((byte)0x5a) < 0, "the rest of the data is kept");
        }

        Assert.Equal(0, await mount.StopAsync());
        var check = await QemuImg.RunAsync("check", image);
        Assert.True(check.ExitCode == 0, check.ToString());
        var map = await QemuImg.RunAsync("map", "--output=json", image);
        var zeroAt2M = JsonNode.Parse(map.Stdout)!.AsArray().First(e => (long)e!["start"]! <= 2 * MiB && 2 * MiB < (long)e!["start"]! + (long)e!["length"]!)!;
        Assert.True((bool)zeroAt2M["zero"]!, map.Stdout);
    }

    [FuseFact]
    public async Task After_kill_9_the_dead_mount_is_refused_by_name_and_unmount_clears_it()
    {
        using var dir = new TempDir("fuse");
        var content = ImageFactory.Random(4 * MiB, seed: 34);
        string image = dir.File("local.raw");
        await File.WriteAllBytesAsync(image, content);
        string file = dir.File("mnt.raw");
        await File.WriteAllBytesAsync(file, []);

        await using (var mount = await MountProcess.StartAsync(image, file, "-r"))
        {
            Assert.Contains("(read-only,", mount.Stderr);

            // A second mount on the same place is refused by name.
            var busy = await UrlDiskCli.RunAsync("mount", image, file);
            CliAssert.Fails(busy, "busy", "urldisk unmount");

            Assert.Equal(137, await mount.StopAsync(MountProcess.SigKill));
            Assert.True(Mounts.IsMounted(file), "the dead mount stays until cleared");
            var e = Assert.ThrowsAny<IOException>(() => File.ReadAllBytes(file));
            Assert.Contains("not connected", e.Message, StringComparison.OrdinalIgnoreCase);

            var again = await UrlDiskCli.RunAsync("mount", image, file);
            CliAssert.Fails(again, "dead mount", "urldisk unmount");

            var unmount = await UrlDiskCli.RunAsync("unmount", file);
            Assert.True(unmount.ExitCode == 0, unmount.ToString());
            Assert.False(Mounts.IsMounted(file));
        }

        // The place is usable again.
        await using var remount = await MountProcess.StartAsync(image, file, "-r");
        ImageFactory.AssertSameBytes(content, await File.ReadAllBytesAsync(file), "after remounting");
        Assert.Equal(0, await remount.StopAsync());
        CliAssert.Fails(await UrlDiskCli.RunAsync("unmount", file), "not a mount point");
    }

    [FuseFact]
    public async Task Daemon_returns_once_the_mount_is_live_and_unmount_ends_it()
    {
        using var dir = new TempDir("fuse");
        var content = ImageFactory.Random(2 * MiB, seed: 35);
        string image = dir.File("d.raw");
        await File.WriteAllBytesAsync(image, content);
        string file = dir.File("dmnt.raw");
        await File.WriteAllBytesAsync(file, []);
        try
        {
            var started = await UrlDiskCli.RunAsync("mount", "--daemon", "-r", image, file);
            Assert.True(started.ExitCode == 0, started.ToString());
            var pidText = System.Text.RegularExpressions.Regex.Match(started.Stderr, @"\(pid (\d+)\)");
            Assert.True(pidText.Success, started.Stderr);
            ImageFactory.AssertSameBytes(content, await File.ReadAllBytesAsync(file), "through the daemon's mount");

            var unmount = await UrlDiskCli.RunAsync("unmount", file);
            Assert.True(unmount.ExitCode == 0, unmount.ToString());
            Assert.False(Mounts.IsMounted(file));

            // The background process finishes by itself once unmounted.
            int pid = int.Parse(pidText.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            for (int i = 0; i < 300 && Directory.Exists($"/proc/{pid}") && !IsZombie(pid); i++)
            {
                await Task.Delay(100);
            }

            Assert.False(Directory.Exists($"/proc/{pid}") && !IsZombie(pid), "the background mount process did not exit after unmount");
        }
        finally
        {
            await Mounts.CleanUpAsync(file);
        }
    }

    [FuseFact]
    public async Task Bad_mountpoints_are_refused_by_name()
    {
        using var dir = new TempDir("fuse");
        string image = dir.File("b.raw");
        await File.WriteAllBytesAsync(image, new byte[4096]);
        CliAssert.Fails(await UrlDiskCli.RunAsync("mount", image, dir.File("missing/none.raw")), "mountpoint", "create an empty file");
        CliAssert.Fails(await UrlDiskCli.RunAsync("mount", image, "/dev/null"), "neither a regular file nor a directory");
        CliAssert.Fails(await UrlDiskCli.RunAsync("unmount", dir.Path), "not a mount point");
        CliAssert.Fails(await UrlDiskCli.RunAsync("unmount", "/proc"), "not one of urldisk mount");
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].StartsWith('Z');
        }
        catch (IOException)
        {
            return false;
        }
    }
}
