using System.Security.Cryptography;
using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary>qemu-nbd's flags on <c>urldisk serve</c>, checked with nbdinfo, nbdsh, qemu-img and against qemu-nbd itself.</summary>
public class ServeQemuNbdFlagsTests
{
    private const int MiB = 1 << 20;

    private static async Task<long> AllocatedBlocksAsync(string path)
    {
        var r = await ProcessRunner.RunAsync("stat", ["-c", "%b", path]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return long.Parse(r.Stdout.Trim());
    }

    private static async Task<JsonNode> ExportJsonAsync(string uri)
        => JsonNode.Parse((await NbdTool.RunAsync("nbdinfo", ["--json", uri])).EnsureSuccess().Stdout)!["exports"]![0]!;

    [Theory]
    [InlineData("unmap")]
    [InlineData("ignore")]
    public async Task Trim_on_a_writable_raw_file_punches_holes_unless_discard_is_ignore(string discard)
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, 8 * MiB, (0, 8 * MiB));
        long before = await AllocatedBlocksAsync(image);
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--persistent", $"--discard={discard}", image);

        Assert.True((bool)(await ExportJsonAsync(serve.Uri))["can_trim"]!);
        (await NbdTool.NbdShAsync(serve.Uri, "h.trim(4 * 1024 * 1024, 2 * 1024 * 1024); h.flush()")).EnsureSuccess();
        Assert.Equal(0, await serve.StopAsync());

        long after = await AllocatedBlocksAsync(image);
        if (discard == "unmap")
        {
            // 4 MiB are 8192 blocks of 512 bytes: the file gave them back, and they read as zeros.
            Assert.True(before - after >= 8192, $"blocks before {before}, after {after}");
            var bytes = File.ReadAllBytes(image);
            Assert.All(bytes.AsSpan(2 * MiB, 4 * MiB).ToArray(), b => Assert.Equal(0, b));
            Assert.Contains(bytes.AsSpan(0, 2 * MiB).ToArray(), b => b != 0);
        }
        else
        {
            Assert.Equal(before, after);
        }
    }

    [Fact]
    public async Task Nocache_is_taken_as_qemu_nbd_takes_it()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, 4 * MiB, (0, 4 * MiB));
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "-n", image);
        (await NbdTool.NbdShAsync(serve.Uri, "h.pwrite(b'\\x5a' * 4096, 8192); h.flush()")).EnsureSuccess();
        Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.All(File.ReadAllBytes(image).AsSpan(8192, 4096).ToArray(), b => Assert.Equal(0x5a, b));
    }

    [Fact]
    public async Task Detect_zeroes_unmap_turns_zero_writes_into_holes()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, 4 * MiB, (0, 4 * MiB));
        long before = await AllocatedBlocksAsync(image);
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--detect-zeroes=unmap", "--discard=unmap", "--cache=none", "--aio=native", image);
        (await NbdTool.NbdShAsync(serve.Uri, "h.pwrite(bytearray(2 * 1024 * 1024), 1024 * 1024); h.flush()")).EnsureSuccess();
        Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        long after = await AllocatedBlocksAsync(image);
        Assert.True(before - after >= 4096, $"blocks before {before}, after {after}");
        Assert.All(File.ReadAllBytes(image).AsSpan(MiB, 2 * MiB).ToArray(), b => Assert.Equal(0, b));
    }

    [Theory]
    [InlineData("--cache=bogus", "--cache: invalid cache mode: bogus (allowed: none, writeback")]
    [InlineData("--aio=fast", "--aio: 'fast' is not allowed")]
    [InlineData("--discard=maybe", "--discard: 'maybe' is not allowed")]
    [InlineData("--detect-zeroes=unmap", "--detect-zeroes=unmap needs --discard=unmap")]
    [InlineData("--offset=lots", "--offset: 'lots' is not a byte offset")]
    [InlineData("--tls-cert=/nonexistent.pem", "--tls-cert and --tls-key go together")]
    [InlineData("--tls-ca=/nonexistent.pem", "--tls-ca and --tls-hostname are for -L/--list")]
    [InlineData("--tls-hostname=h", "--tls-ca and --tls-hostname are for -L/--list")]
    public async Task Bad_values_are_refused_naming_the_flag(string flag, string message)
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, MiB);
        string[] args = flag == "--detect-zeroes=unmap" ? ["serve", flag, "--discard=ignore", "--socket", dir.File("s"), image] : ["serve", flag, "--socket", dir.File("s"), image];
        var r = await UrlDiskCli.RunAsync(args);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.False(File.Exists(dir.File("s")));
    }

    [Fact]
    public async Task Offset_exports_the_image_from_that_byte_on()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        var bytes = NbdTool.CreateSparseFile(image, 4 * MiB, (0, 4 * MiB));
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--read-only", "-o", "1M", image);
        string copy = dir.File("copy.raw");
        (await NbdTool.RunAsync("nbdcopy", [serve.Uri, copy])).EnsureSuccess();
        Assert.Equal(bytes.AsSpan(MiB).ToArray(), File.ReadAllBytes(copy));
    }

    [Fact]
    public async Task Snapshot_takes_writes_in_a_temporary_overlay_and_leaves_the_image_unchanged()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        var original = NbdTool.CreateSparseFile(image, 4 * MiB, (0, MiB));
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--snapshot", "--persistent", image);
        Assert.False((bool)(await ExportJsonAsync(serve.Uri))["is_read_only"]!);

        // What was written reads back through the export, and the rest is still the image's.
        var check = await NbdTool.NbdShAsync(serve.Uri, """
            h.pwrite(b"\xab" * 65536, 0)
            h.pwrite(b"\xcd" * 4096, 3 * 1024 * 1024)
            h.flush()
            assert h.pread(65536, 0) == b"\xab" * 65536
            assert h.pread(4096, 3 * 1024 * 1024) == b"\xcd" * 4096
            print("OK")
            """);
        Assert.Equal("OK", check.EnsureSuccess().Stdout.Trim());
        var tail = await NbdTool.NbdShAsync(serve.Uri, "import hashlib; print(hashlib.sha256(h.pread(65536, 65536)).hexdigest())");
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(original.AsSpan(65536, 65536))), tail.EnsureSuccess().Stdout.Trim());

        Assert.Equal(0, await serve.StopAsync());
        Assert.Equal(original, File.ReadAllBytes(image));
        Assert.Empty(Directory.GetFiles(Path.GetTempPath(), $"urldisk-snapshot-{serve.Pid}-*"));
    }

    [Fact]
    public async Task Fork_returns_once_the_socket_listens_and_a_failed_start_gives_its_exit_code()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, 2 * MiB, (0, 4096));
        string socket = dir.File("s");
        string pidFile = dir.File("pid");
        var r = await UrlDiskCli.RunAsync("serve", "--fork", "--socket", socket, "--pid-file", pidFile, image);
        int pid = 0;
        try
        {
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.True(File.Exists(socket), "the socket exists when --fork returns");
            pid = int.Parse(File.ReadAllText(pidFile).Trim());

            // Connect straight away: no waiting, no retry.
            var export = await ExportJsonAsync($"nbd+unix:///?socket={socket}");
            Assert.Equal(2L * MiB, (long)export["export-size"]!);
        }
        finally
        {
            if (pid > 0)
            {
                try
                {
                    using var p = System.Diagnostics.Process.GetProcessById(pid);
                    if (!p.WaitForExit(20_000))
                    {
                        p.Kill();
                    }
                }
                catch (ArgumentException)
                {
                    // Already gone: the server left with its only client, as qemu-nbd does.
                }
            }
        }

        var failed = await UrlDiskCli.RunAsync("serve", "--fork", "--socket", dir.File("s2"), dir.File("missing.raw"));
        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("missing.raw", failed.Stderr);
        Assert.False(File.Exists(dir.File("s2")));
    }

    [Fact]
    public async Task A_raw_file_of_1000_bytes_is_exported_as_1000_bytes()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("odd.raw");
        var bytes = NbdTool.CreateSparseFile(image, 1000, (0, 1000));
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--persistent", image);
        var export = await ExportJsonAsync(serve.Uri);
        Assert.Equal(1000L, (long)export["export-size"]!);
        Assert.Equal(1, (int)export["block_size_minimum"]!);

        string copy = dir.File("copy.raw");
        (await NbdTool.RunAsync("nbdcopy", [serve.Uri, copy])).EnsureSuccess();
        Assert.Equal(bytes, File.ReadAllBytes(copy));

        // QEMU's block layer works in 512-byte sectors: it sees 1024 bytes and reads the tail past 1000 as zeros.
        var io = (await NbdTool.RunAsync("qemu-io", ["-f", "raw", "-r", "-c", "read -P 0 1000 24", serve.Uri])).EnsureSuccess();
        Assert.DoesNotContain("fail", io.Stdout + io.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, await serve.StopAsync());
    }

    [Fact]
    public async Task Allocation_depth_map_matches_qemu_nbd_on_a_qcow2_chain()
    {
        using var dir = new NbdTempDir();
        string baseImage = dir.File("base.raw");
        NbdTool.CreateSparseFile(baseImage, 4 * MiB, (0, MiB));
        string overlay = dir.File("top.qcow2");
        (await NbdTool.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", baseImage, "-F", "raw", overlay])).EnsureSuccess();
        (await NbdTool.RunAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 7 512k 256k", "-c", "write -z 3M 128k", overlay])).EnsureSuccess();

        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "-A", "--read-only", "--persistent", overlay);
        var ours = (await NbdTool.RunAsync("nbdinfo", ["--map=qemu:allocation-depth", serve.Uri])).EnsureSuccess().Stdout;

        string qsock = dir.File("q");
        (await NbdTool.RunAsync("qemu-nbd", ["--fork", "--persistent", "-A", "-r", "-f", "qcow2", "-k", qsock, "--pid-file", dir.File("qpid"), overlay])).EnsureSuccess();
        try
        {
            var theirs = (await NbdTool.RunAsync("nbdinfo", ["--map=qemu:allocation-depth", $"nbd+unix:///?socket={qsock}"])).EnsureSuccess().Stdout;
            Assert.Equal(theirs, ours);
            Assert.Contains("2  backing depth 2", ours);
            Assert.Contains("1  local", ours);
        }
        finally
        {
            NbdSourceTests.StopQemuNbd(dir.File("qpid"));
        }

        // The ordinary context is still there beside it.
        var map = (await NbdTool.RunAsync("nbdinfo", ["--map", serve.Uri])).EnsureSuccess().Stdout;
        Assert.Contains("data", map);
    }

    [Fact]
    public async Task List_prints_what_qemu_nbd_L_prints_and_reads_qemu_nbd_too()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, 3 * MiB, (0, 4096));
        string socket = dir.File("s");
        await using var serve = await ServeProcess.StartAsync("--socket", socket, "-x", "disk1", "-D", "test disk", "-A", "--shared", "2", "--persistent", image);
        var ours = await UrlDiskCli.RunAsync("serve", "--list", "--socket", socket);
        Assert.True(ours.ExitCode == 0, ours.ToString());
        var theirs = (await NbdTool.RunAsync("qemu-nbd", ["-L", "-k", socket])).EnsureSuccess();
        Assert.Equal(theirs.Stdout, ours.Stdout);
        Assert.Contains(" export: 'disk1'", ours.Stdout);
        Assert.Contains("qemu:allocation-depth", ours.Stdout);

        string qsock = dir.File("q");
        (await NbdTool.RunAsync("qemu-nbd", ["--fork", "--persistent", "-r", "-f", "raw", "-x", "q", "-k", qsock, "--pid-file", dir.File("qpid"), image])).EnsureSuccess();
        try
        {
            var against = await UrlDiskCli.RunAsync("serve", "-L", $"nbd+unix:///?socket={qsock}");
            Assert.True(against.ExitCode == 0, against.ToString());
            Assert.Equal((await NbdTool.RunAsync("qemu-nbd", ["-L", "-k", qsock])).EnsureSuccess().Stdout, against.Stdout);
        }
        finally
        {
            NbdSourceTests.StopQemuNbd(dir.File("qpid"));
        }
    }

    [Fact]
    public async Task Tls_serves_clients_that_start_tls_and_refuses_plaintext_ones()
    {
        using var dir = new NbdTempDir();
        var cert = await TestCertificate.CreateAsync(dir.Path);
        string image = dir.File("disk.raw");
        var bytes = NbdTool.CreateSparseFile(image, 2 * MiB, (0, 2 * MiB));
        int port = FreePort.Get();
        await using var serve = await ServeProcess.StartAsync("--port", port.ToString(), "--tls-cert", cert.CertificatePath, "--tls-key", cert.KeyPath, "--read-only", "--shared", "0", "--persistent", image);

        // A plaintext client is refused with NBD_REP_ERR_TLS_REQD, which qemu-img names.
        var plain = await NbdTool.RunAsync("qemu-img", ["info", $"nbd://127.0.0.1:{port}/"]);
        Assert.NotEqual(0, plain.ExitCode);
        Assert.Contains("TLS negotiation required", plain.Stderr);
        Assert.NotEqual(0, (await NbdTool.RunAsync("nbdinfo", [$"nbd://127.0.0.1:{port}/"])).ExitCode);

        var info = (await NbdTool.RunAsync("nbdinfo", ["--json", $"nbds://127.0.0.1:{port}/?tls-verify-peer=false"])).EnsureSuccess();
        Assert.Equal(2L * MiB, (long)JsonNode.Parse(info.Stdout)!["exports"]![0]!["export-size"]!);

        // qemu-img with QEMU's x509 credentials: the self-signed certificate is its own CA.
        string creds = Directory.CreateDirectory(dir.File("creds")).FullName;
        File.Copy(cert.CertificatePath, Path.Combine(creds, "ca-cert.pem"));
        string copy = dir.File("copy.raw");
        (await NbdTool.RunAsync("qemu-img", ["convert", "--object", $"tls-creds-x509,id=tls0,dir={creds},endpoint=client",
            "--image-opts", $"driver=raw,file.driver=nbd,file.host=127.0.0.1,file.port={port},file.tls-creds=tls0", "-O", "raw", copy])).EnsureSuccess();
        Assert.Equal(bytes, File.ReadAllBytes(copy));
        Assert.Equal(0, await serve.StopAsync());
    }
}
