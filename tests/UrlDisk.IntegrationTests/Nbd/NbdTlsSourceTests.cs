using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary>
/// The NBD client over TLS (<c>nbds://</c>, <c>nbds+unix://</c>, tls-* options), against qemu-nbd with x509
/// credentials, nbdkit <c>--tls=require</c> and <c>urldisk serve --tls-cert</c>: reads, overlays, <c>serve -L</c>,
/// and the refusals (no TLS on the server, a CA that does not match).
/// </summary>
public class NbdTlsSourceTests
{
    private const int MiB = 1 << 20;

    /// <summary>A daemon (qemu-nbd --fork, nbdkit) known by its pid file; killed on dispose.</summary>
    internal sealed class Daemon(string pidFile) : IDisposable
    {
        public static async Task<Daemon> QemuNbdAsync(string pidFile, params string[] args)
        {
            (await NbdTool.RunAsync("qemu-nbd", ["--fork", "--persistent", "--pid-file", pidFile, .. args])).EnsureSuccess();
            return new Daemon(pidFile);
        }

        /// <summary>nbdkit writes its pid file once it listens, then runs in the background.</summary>
        public static async Task<Daemon> NbdkitAsync(string pidFile, params string[] args)
        {
            (await NbdTool.RunAsync("nbdkit", ["-P", pidFile, .. args])).EnsureSuccess();
            return new Daemon(pidFile);
        }

        public void Dispose() => NbdSourceTests.StopQemuNbd(pidFile);
    }

    internal static string[] QemuTlsClient(string directory) =>
        ["--object", $"tls-creds-x509,id=tls0,dir={directory},endpoint=client", "--tls-creds", "tls0"];

    private static async Task<long> VirtualSizeAsync(params string[] spec)
    {
        var info = await UrlDiskCli.RunAsync(["info", "--output", "json", .. spec]);
        Assert.True(info.ExitCode == 0, info.ToString());
        return (long)JsonNode.Parse(info.Stdout)!["virtual-size"]!;
    }

    private static async Task<byte[]> ConvertAsync(NbdTempDir dir, string spec, string name = "copy.raw")
    {
        string copy = dir.File(name);
        var convert = await UrlDiskCli.RunAsync("convert", "-O", "raw", spec, copy);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        return File.ReadAllBytes(copy);
    }

    [Fact]
    public async Task Qemu_nbd_with_x509_credentials_is_read_overlaid_and_listed_with_a_client_certificate()
    {
        using var dir = new NbdTempDir();
        var pki = await TestPki.CreateAsync(dir.Path);
        string image = dir.File("disk.raw");
        var bytes = NbdTool.CreateSparseFile(image, 4 * MiB, (0, 64 * 1024), (3 * MiB, MiB));
        int port = FreePort.Get();

        // qemu's x509 server credentials verify the peer by default: the client must show a certificate from the CA.
        using var server = await Daemon.QemuNbdAsync(dir.File("pid"), "-r", "-f", "raw", "-b", "127.0.0.1", "-p", port.ToString(), "-x", "disk",
            "--object", $"tls-creds-x509,id=tls0,dir={pki.ServerDirectory},endpoint=server", "--tls-creds", "tls0", image);
        string url = $"nbds://127.0.0.1:{port}/disk?tls-certificates={pki.ClientDirectory}";

        Assert.Equal(4L * MiB, await VirtualSizeAsync(url));
        Assert.Equal(bytes, await ConvertAsync(dir, url));

        // A qcow2 overlay whose backing file is the nbds:// export.
        string overlay = dir.File("top.qcow2");
        var create = await UrlDiskCli.RunAsync("create", "-f", "qcow2", "-F", "raw", "-b", url, overlay);
        Assert.True(create.ExitCode == 0, create.ToString());
        Assert.Equal(bytes, await ConvertAsync(dir, overlay, "overlay.raw"));

        // serve -L prints what qemu-nbd -L prints with the same credentials.
        var list = await UrlDiskCli.RunAsync("serve", "-L", $"nbds://127.0.0.1:{port}/?tls-certificates={pki.ClientDirectory}");
        Assert.True(list.ExitCode == 0, list.ToString());
        var expected = (await NbdTool.RunAsync("qemu-nbd", ["-L", "-b", "127.0.0.1", "-p", port.ToString(), .. QemuTlsClient(pki.ClientDirectory)])).EnsureSuccess();
        Assert.Equal(expected.Stdout, list.Stdout);
        Assert.Contains(" export: 'disk'", list.Stdout);

        // Without a client certificate qemu-nbd hangs up after the handshake; the error says what may be missing.
        var noCert = await UrlDiskCli.RunAsync("info", $"nbds://127.0.0.1:{port}/disk?tls-certificates={pki.CaOnlyDirectory}");
        Assert.Equal(1, noCert.ExitCode);
        Assert.Contains("client-cert.pem", noCert.Stderr);
    }

    [Fact]
    public async Task Nbdkit_with_tls_required_is_read_with_a_ca_file_and_refuses_a_wrong_ca_or_name()
    {
        using var dir = new NbdTempDir();
        var pki = await TestPki.CreateAsync(dir.Path);
        var other = await TestPki.CreateAsync(dir.Path, "other");
        string image = dir.File("disk.raw");
        var bytes = NbdTool.CreateSparseFile(image, 2 * MiB, (4096, 100_000));
        int port = FreePort.Get();
        using var server = await Daemon.NbdkitAsync(dir.File("pid"), "-i", "127.0.0.1", "-p", port.ToString(),
            "--tls=require", $"--tls-certificates={pki.ServerDirectory}", "file", image);
        string url = $"nbds://127.0.0.1:{port}/?tls-ca={pki.CaPath}";

        Assert.Equal(2L * MiB, await VirtualSizeAsync(url));
        Assert.Equal(bytes, await ConvertAsync(dir, url));

        // The same, spelled as qemu's server object with the CA as an option.
        string json = $$"""json:{"driver":"nbd","server":{"type":"inet","host":"127.0.0.1","port":"{{port}}"},"tls-ca":"{{pki.CaPath}}"}""";
        Assert.Equal(2L * MiB, await VirtualSizeAsync(json));

        // -L: an nbds:// URL, or -b/-p with --tls-ca; both print qemu-nbd -L's lines.
        var expected = (await NbdTool.RunAsync("qemu-nbd", ["-L", "-b", "127.0.0.1", "-p", port.ToString(), .. QemuTlsClient(pki.CaOnlyDirectory)])).EnsureSuccess().Stdout;
        var byUrl = await UrlDiskCli.RunAsync("serve", "-L", url);
        Assert.True(byUrl.ExitCode == 0, byUrl.ToString());
        Assert.Equal(expected, byUrl.Stdout);
        var byFlags = await UrlDiskCli.RunAsync("serve", "-L", "-b", "127.0.0.1", "-p", port.ToString(), "--tls-ca", pki.CaPath);
        Assert.True(byFlags.ExitCode == 0, byFlags.ToString());
        Assert.Equal(expected, byFlags.Stdout);

        // Another CA, the system's CAs, or another name: refused, saying it was the verification.
        var wrongCa = await UrlDiskCli.RunAsync("info", $"nbds://127.0.0.1:{port}/?tls-ca={other.CaPath}");
        Assert.Equal(1, wrongCa.ExitCode);
        Assert.Contains("failed verification", wrongCa.Stderr);
        Assert.Contains("not trusted", wrongCa.Stderr);
        var system = await UrlDiskCli.RunAsync("info", $"nbds://127.0.0.1:{port}/");
        Assert.Equal(1, system.ExitCode);
        Assert.Contains("failed verification against the system's trusted CAs", system.Stderr);
        var wrongName = await UrlDiskCli.RunAsync("info", $"nbds://127.0.0.1:{port}/?tls-ca={pki.CaPath}&tls-hostname=other.example");
        Assert.Equal(1, wrongName.ExitCode);
        Assert.Contains("name does not match", wrongName.Stderr);
        var wrongList = await UrlDiskCli.RunAsync("serve", "-L", "-b", "127.0.0.1", "-p", port.ToString(), "--tls-ca", other.CaPath);
        Assert.Equal(1, wrongList.ExitCode);
        Assert.Contains("failed verification", wrongList.Stderr);
        Assert.Equal("", wrongList.Stdout);

        // No key material in any message.
        foreach (var r in new[] { wrongCa, system, wrongName, wrongList })
        {
            Assert.DoesNotContain("PRIVATE KEY", r.Stderr);
        }

        // Plaintext to a server that requires TLS: a clear error.
        var plain = await UrlDiskCli.RunAsync("info", $"nbd://127.0.0.1:{port}/");
        Assert.Equal(1, plain.ExitCode);
        Assert.Contains("requires TLS; use nbds://", plain.Stderr);
    }

    [Fact]
    public async Task Urldisk_serve_with_tls_is_read_over_nbds_and_nbds_unix_and_listed()
    {
        using var dir = new NbdTempDir();
        var pki = await TestPki.CreateAsync(dir.Path);
        string image = dir.File("disk.raw");
        var bytes = NbdTool.CreateSparseFile(image, 3 * MiB, (0, 3 * MiB));
        int port = FreePort.Get();
        await using var tcp = await ServeProcess.StartAsync("--port", port.ToString(), "-x", "mine", "--tls-cert", pki.ServerCertificatePath,
            "--tls-key", pki.ServerKeyPath, "--read-only", "--shared", "0", "--persistent", image);

        // The host name is checked against the certificate's DNS name.
        Assert.Equal(bytes, await ConvertAsync(dir, $"nbds://localhost:{port}/mine?tls-ca={pki.CaPath}"));
        var list = await UrlDiskCli.RunAsync("serve", "-L", "-b", "127.0.0.1", "-p", port.ToString(), "--tls-ca", pki.CaPath);
        Assert.True(list.ExitCode == 0, list.ToString());
        var expected = (await NbdTool.RunAsync("qemu-nbd", ["-L", "-b", "127.0.0.1", "-p", port.ToString(), .. QemuTlsClient(pki.CaOnlyDirectory)])).EnsureSuccess();
        Assert.Equal(expected.Stdout, list.Stdout);

        // Over a Unix socket there is no host: the chain is checked, and the name when tls-hostname gives one.
        string socket = dir.File("s");
        await using var unix = await ServeProcess.StartAsync("--socket", socket, "--tls-cert", pki.ServerCertificatePath,
            "--tls-key", pki.ServerKeyPath, "--read-only", "--persistent", image);
        Assert.Equal(3L * MiB, await VirtualSizeAsync($"nbds+unix:///?socket={socket}&tls-ca={pki.CaPath}&tls-hostname=localhost"));
        var wrongName = await UrlDiskCli.RunAsync("info", $"nbds+unix:///?socket={socket}&tls-ca={pki.CaPath}&tls-hostname=other.example");
        Assert.Equal(1, wrongName.ExitCode);
        Assert.Contains("name does not match", wrongName.Stderr);
    }

    [Fact]
    public async Task Nbds_to_servers_without_tls_is_refused_and_never_falls_back_to_plaintext()
    {
        using var dir = new NbdTempDir();
        var pki = await TestPki.CreateAsync(dir.Path);
        string image = dir.File("disk.raw");
        NbdTool.CreateSparseFile(image, MiB, (0, MiB));
        int nbdkitPort = FreePort.Get();
        using var nbdkit = await Daemon.NbdkitAsync(dir.File("pid"), "-i", "127.0.0.1", "-p", nbdkitPort.ToString(), "file", image);
        using var qemu = await Daemon.QemuNbdAsync(dir.File("qpid"), "-r", "-f", "raw", "-k", dir.File("q"), image);
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--read-only", "--persistent", image);

        // The same server over plaintext: serve -L prints qemu-nbd -L's lines (nbdkit sends no block sizes, so neither prints them).
        var plainList = await UrlDiskCli.RunAsync("serve", "-L", "-b", "127.0.0.1", "-p", nbdkitPort.ToString());
        Assert.True(plainList.ExitCode == 0, plainList.ToString());
        Assert.Equal((await NbdTool.RunAsync("qemu-nbd", ["-L", "-b", "127.0.0.1", "-p", nbdkitPort.ToString()])).EnsureSuccess().Stdout, plainList.Stdout);

        foreach (string url in new[]
        {
            $"nbds://127.0.0.1:{nbdkitPort}/?tls-ca={pki.CaPath}",
            $"nbds+unix:///?socket={dir.File("q")}&tls-ca={pki.CaPath}",
            $"nbds+unix:///?socket={dir.File("s")}",
        })
        {
            string copy = dir.File("copy.raw");
            var r = await UrlDiskCli.RunAsync("convert", "-O", "raw", url, copy);
            Assert.Equal(1, r.ExitCode);
            Assert.Contains("the server does not do TLS", r.Stderr);
            Assert.Contains("not going on in plaintext", r.Stderr);
            Assert.False(File.Exists(copy), $"{url}: nothing is written");

            var list = await UrlDiskCli.RunAsync("serve", "-L", url);
            Assert.Equal(1, list.ExitCode);
            Assert.Contains("the server does not do TLS", list.Stderr);
        }
    }
}
