using System.Text.Json.Nodes;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary><c>urldisk serve</c> as a child process, inspected with nbdinfo.</summary>
public class ServeNbdInfoTests
{
    private const int MiB = 1 << 20;

    [Fact]
    public async Task Nbdinfo_json_shows_size_flags_block_sizes_name_and_description_then_server_exits()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, 16 * MiB, (MiB, 4096));
        string socket = dir.File("s");
        await using var serve = await ServeProcess.StartAsync("--socket", socket, "--export-name", "disk1", "--description", "test disk", image);
        Assert.Equal($"nbd+unix:///disk1?socket={socket}", serve.Uri);

        var result = (await NbdTool.RunAsync("nbdinfo", ["--json", serve.Uri])).EnsureSuccess();
        var json = JsonNode.Parse(result.Stdout)!;
        Assert.Equal("newstyle-fixed", (string?)json["protocol"]);
        Assert.True((bool)json["structured"]!);
        var export = json["exports"]![0]!;
        Assert.Equal("disk1", (string?)export["export-name"]);
        Assert.Equal("test disk", (string?)export["description"]);
        Assert.Equal(16L * MiB, (long)export["export-size"]!);
        Assert.False((bool)export["is_read_only"]!);
        Assert.True((bool)export["can_flush"]!);
        Assert.True((bool)export["can_fua"]!);
        Assert.True((bool)export["can_zero"]!);
        Assert.True((bool)export["can_fast_zero"]!);
        Assert.True((bool)export["can_cache"]!);
        Assert.True((bool)export["can_df"]!);
        Assert.True((bool)export["can_trim"]!); // a writable raw file punches holes, as qemu-nbd advertises
        Assert.False((bool)export["can_multi_conn"]!); // --shared defaults to 1, as qemu-nbd
        Assert.Equal(1, (int)export["block_size_minimum"]!);
        Assert.Equal(64 * 1024, (int)export["block_size_preferred"]!);
        Assert.Equal(32 * MiB, (int)export["block_size_maximum"]!);
        Assert.Contains("base:allocation", export["contexts"]!.AsArray().Select(c => (string?)c));

        // Not persistent: the server leaves when its only client has gone, and removes its socket.
        Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        Assert.False(File.Exists(socket));
    }

    [Fact]
    public async Task Read_only_shared_export_has_no_write_flags_and_allows_multi_conn()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, 4 * MiB, (0, 4096));
        string pidFile = dir.File("serve.pid");
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--read-only", "--shared", "4", "--persistent", "--pid-file", pidFile, image);
        Assert.Equal(serve.Pid.ToString(), File.ReadAllText(pidFile).Trim());

        var export = JsonNode.Parse((await NbdTool.RunAsync("nbdinfo", ["--json", serve.Uri])).EnsureSuccess().Stdout)!["exports"]![0]!;
        Assert.True((bool)export["is_read_only"]!);
        Assert.True((bool)export["can_multi_conn"]!);
        Assert.False((bool)export["can_flush"]!);
        Assert.False((bool)export["can_zero"]!);
        Assert.False((bool)export["can_trim"]!);

        // Persistent: a second client is served after the first left; then SIGINT ends it with 0.
        var list = (await NbdTool.RunAsync("nbdinfo", ["--list", serve.Uri])).EnsureSuccess();
        Assert.Contains("export-size: 4194304", list.Stdout);
        Assert.False(serve.HasExited);
        Assert.Equal(0, await serve.StopAsync(ServeProcess.SigInt));
        Assert.False(File.Exists(pidFile));
    }

    [Fact]
    public async Task Map_of_a_sparse_raw_file_shows_its_holes_and_data()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("sparse.raw");
        (long, int)[] data = [(MiB, 64 * 1024), (5 * MiB, 2 * MiB), (15 * MiB, 4096)];
        NbdTool.CreateSparseFile(image, 16 * MiB, data);
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--read-only", image);

        var map = JsonNode.Parse((await NbdTool.RunAsync("nbdinfo", ["--map", "--json", serve.Uri])).EnsureSuccess().Stdout)!.AsArray();
        var got = map.Select(e => ((long)e!["offset"]!, (long)e["length"]!, (int)e["type"]!)).ToList();

        // What the layout implies: data where written, holes (hole|zero = 3) elsewhere.
        var expected = new List<(long, long, int)>();
        long at = 0;
        foreach (var (offset, length) in data)
        {
            if (offset > at)
            {
                expected.Add((at, offset - at, 3));
            }

            expected.Add((offset, length, 0));
            at = offset + length;
        }

        if (at < 16 * MiB)
        {
            expected.Add((at, (16 * MiB) - at, 3));
        }

        Assert.Equal(expected, got);
        Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task Tcp_listener_on_a_free_port_serves_nbdinfo()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, MiB, (0, 512));
        await using var serve = await ServeProcess.StartAsync("--bind", "127.0.0.1", "--port", "0", "--read-only", image);
        Assert.StartsWith("nbd://127.0.0.1:", serve.Uri);

        var export = JsonNode.Parse((await NbdTool.RunAsync("nbdinfo", ["--json", serve.Uri])).EnsureSuccess().Stdout)!["exports"]![0]!;
        Assert.Equal(MiB, (long)export["export-size"]!);
        Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task Json_and_image_opts_specs_of_local_files_are_served_writable_unless_read_only()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, MiB);
        string json = $$$"""json:{"driver":"raw","file":{"driver":"file","filename":"{{{image}}}"}}""";

        await using (var serve = await ServeProcess.StartAsync("--socket", dir.File("s1"), json))
        {
            Assert.Contains("(read-write,", serve.Stderr);
            Assert.Equal(0, await serve.StopAsync());
        }

        await using (var serve = await ServeProcess.StartAsync("--socket", dir.File("s2"), "--image-opts", $"driver=raw,file.driver=file,file.filename={image}"))
        {
            var export = JsonNode.Parse((await NbdTool.RunAsync("nbdinfo", ["--json", serve.Uri])).EnsureSuccess().Stdout)!["exports"]![0]!;
            Assert.False((bool)export["is_read_only"]!);
            Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        }

        await using (var serve = await ServeProcess.StartAsync("--socket", dir.File("s3"), "-r", "-f", "raw", image))
        {
            Assert.Contains("(read-only,", serve.Stderr);
            Assert.Equal(0, await serve.StopAsync());
        }
    }

    [Fact]
    public async Task Sigterm_exits_0_even_when_a_client_never_reads_its_replies()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, 64 * MiB, (0, 64 * MiB));
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--read-only", image);
        await using var client = new RawNbdClient(await ConnectUnixAsync(dir.File("s")));
        await client.HandshakeAsync();
        var batch = new byte[8 * UrlDisk.Nbd.Wire.NbdRequest.CompactSize];
        for (int i = 0; i < 8; i++)
        {
            new UrlDisk.Nbd.Wire.NbdRequest(0, UrlDisk.Nbd.Wire.NbdCommand.Read, (ulong)i, (ulong)(i % 2 * 32 * MiB), 32 * MiB)
                .Write(batch.AsSpan(i * UrlDisk.Nbd.Wire.NbdRequest.CompactSize));
        }

        await client.SendAsync(batch);
        await Task.Delay(500);
        var stopped = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(0, await serve.StopAsync());
        Assert.True(stopped.Elapsed < TimeSpan.FromSeconds(10), $"took {stopped.Elapsed}");
        Assert.Contains("cut after", serve.Stderr);
    }

    private static async Task<System.Net.Sockets.Socket> ConnectUnixAsync(string path)
    {
        var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        await s.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        return s;
    }

    [Fact]
    public async Task A_stale_socket_file_is_replaced_but_a_live_socket_is_refused()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, MiB, (0, 4096));
        string path = dir.File("s");

        // A serve killed with SIGKILL leaves its socket file behind, with nobody listening on it.
        await using (var killed = await ServeProcess.StartAsync("--socket", path, "--read-only", image))
        {
            Assert.Equal(137, await killed.StopAsync(9));
        }

        Assert.True(File.Exists(path));
        await using var serve = await ServeProcess.StartAsync("--socket", path, "--read-only", "--persistent", image);
        var info = (await NbdTool.RunAsync("nbdinfo", ["--size", serve.Uri])).EnsureSuccess();
        Assert.Equal(MiB.ToString(), info.Stdout.Trim());

        // A second serve on the same path must not steal it from the first.
        string cli = await Infrastructure.UrlDiskCli.LauncherAsync();
        var second = await NbdTool.RunAsync(cli, ["serve", "--socket", path, image]);
        Assert.Equal(1, second.ExitCode);
        Assert.Contains("in use", second.Stderr);
        (await NbdTool.RunAsync("nbdinfo", ["--size", serve.Uri])).EnsureSuccess();
        Assert.Equal(0, await serve.StopAsync());
    }

    [Fact]
    public async Task Bad_options_fail_with_a_clear_message()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, MiB);
        string cli = await Infrastructure.UrlDiskCli.LauncherAsync();

        var both = await NbdTool.RunAsync(cli, ["serve", "--socket", dir.File("s"), "--bind", "127.0.0.1", image]);
        Assert.Equal(1, both.ExitCode);
        Assert.Contains("--socket and --bind/--port", both.Stderr);

        File.WriteAllText(dir.File("taken"), "not a socket");
        var taken = await NbdTool.RunAsync(cli, ["serve", "--socket", dir.File("taken"), image]);
        Assert.Equal(1, taken.ExitCode);
        Assert.Contains("already exists", taken.Stderr);
        Assert.Equal("not a socket", File.ReadAllText(dir.File("taken")));

        var timeout = await NbdTool.RunAsync(cli, ["serve", "--socket", dir.File("s3"), "--timeout", "0", image]);
        Assert.Equal(1, timeout.ExitCode);
        Assert.Contains("--timeout", timeout.Stderr);

        var shared = await NbdTool.RunAsync(cli, ["serve", "--socket", dir.File("s2"), "--shared", "-1", image]);
        Assert.Equal(1, shared.ExitCode);
        Assert.Contains("--shared", shared.Stderr);
        Assert.Empty(shared.Stdout);
    }
}
