using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace UrlDisk.IntegrationTests.Ftp;

/// <summary>
/// Two real vsftpd servers on 127.0.0.1 random ports: one plain + explicit TLS (AUTH TLS optional), one implicit TLS,
/// both with vsftpd's default require_ssl_reuse=YES. Anonymous root and a local Linux user created for the run.
/// </summary>
public sealed class Vsftpd : IAsyncLifetime
{
    private readonly List<Process> _servers = [];

    public string Root { get; } = Directory.CreateTempSubdirectory("urldisk-ftp-").FullName;
    public string AnonRoot => Path.Combine(Root, "anon");
    public string UserRoot => Path.Combine(Root, "user");
    public string CertFile => Path.Combine(Root, "cert.pem");
    public int Port { get; private set; }
    public int ImplicitPort { get; private set; }
    public string User { get; } = "udftp" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

    /// <summary>Has characters that must be percent-encoded in a URL.</summary>
    public string Password { get; } = "p@ss:w/rd%" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

    public byte[] Image { get; } = RandomNumberGenerator.GetBytes(6 * 1024 * 1024 + 12345);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(AnonRoot);
        Directory.CreateDirectory(UserRoot);
        Directory.CreateDirectory(Path.Combine(Root, "empty"));
        // vsftpd refuses an anonymous root writable by the anonymous user; root-owned 755 is what it wants.
        await Run("chmod", $"755 {Root} {AnonRoot}");
        await File.WriteAllBytesAsync(Path.Combine(AnonRoot, "disk.img"), Image);
        await File.WriteAllBytesAsync(Path.Combine(UserRoot, "private.img"), Image);
        await Run("openssl", $"req -x509 -newkey rsa:2048 -nodes -keyout {Root}/key.pem -out {CertFile} -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost");
        await Run("useradd", $"-M -d {UserRoot} -s /bin/sh {User}");
        await Run("chpasswd", "", $"{User}:{Password}\n");

        Port = FreeTcpPort();
        ImplicitPort = FreeTcpPort();
        Start("explicit", Port, implicitTls: false);
        Start("implicit", ImplicitPort, implicitTls: true);
        await WaitForGreetingAsync(Port, tls: false);
        await WaitForGreetingAsync(ImplicitPort, tls: true);
    }

    private void Start(string name, int port, bool implicitTls)
    {
        string conf = Path.Combine(Root, name + ".conf");
        File.WriteAllText(conf, $"""
            listen=YES
            listen_address=127.0.0.1
            listen_port={port}
            background=NO
            seccomp_sandbox=NO
            secure_chroot_dir={Root}/empty
            anonymous_enable=YES
            no_anon_password=YES
            anon_root={AnonRoot}
            local_enable=YES
            local_root={UserRoot}
            pam_service_name=vsftpd
            pasv_enable=YES
            ssl_enable=YES
            implicit_ssl={(implicitTls ? "YES" : "NO")}
            require_ssl_reuse=YES
            rsa_cert_file={CertFile}
            rsa_private_key_file={Root}/key.pem
            allow_anon_ssl=YES
            force_local_logins_ssl=NO
            force_local_data_ssl=NO
            force_anon_logins_ssl=NO
            force_anon_data_ssl=NO
            xferlog_enable=NO
            max_per_ip=0
            max_clients=0

            """);
        var psi = new ProcessStartInfo("vsftpd", conf) { RedirectStandardError = true, RedirectStandardOutput = true };
        _servers.Add(Process.Start(psi) ?? throw new InvalidOperationException("vsftpd did not start"));
    }

    private static async Task WaitForGreetingAsync(int port, bool tls)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                if (!tls)
                {
                    var buf = new byte[64];
                    int n = await client.GetStream().ReadAsync(buf);
                    Assert.StartsWith("220", System.Text.Encoding.ASCII.GetString(buf, 0, n), StringComparison.Ordinal);
                }

                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }

    public static int FreeTcpPort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    internal static async Task Run(string file, string args, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = stdin is not null };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{file} did not start");
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
            p.StandardInput.Close();
        }

        string err = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {args} failed ({p.ExitCode}): {err}");
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var p in _servers)
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
            }

            await p.WaitForExitAsync();
            p.Dispose();
        }

        try
        {
            await Run("userdel", User);
        }
        catch (InvalidOperationException)
        {
            // Already gone; nothing to clean.
        }

        Directory.Delete(Root, recursive: true);
    }
}
