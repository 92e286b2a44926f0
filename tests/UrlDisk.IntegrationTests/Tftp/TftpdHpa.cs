using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace UrlDisk.IntegrationTests.Tftp;

/// <summary>
/// Real tftpd-hpa servers on 127.0.0.1 random UDP ports over one temp directory: a normal one, one started with
/// <c>-r tsize</c> (refuses the size option), both with a 100 ms retransmission timeout (<c>-T</c>) so loss recovers fast.
/// </summary>
public sealed class TftpdHpa : IAsyncLifetime
{
    private readonly List<Process> _servers = [];

    public string Root { get; } = Directory.CreateTempSubdirectory("urldisk-tftp-").FullName;
    public int Port { get; private set; }
    public int NoTsizePort { get; private set; }

    /// <summary>Not a multiple of any block size, so the last block is short.</summary>
    public byte[] Image { get; } = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 777);

    /// <summary>Exactly 8 blocks of 512: the transfer ends with an empty block.</summary>
    public byte[] WholeBlocks { get; } = RandomNumberGenerator.GetBytes(8 * 512);

    public async Task InitializeAsync()
    {
        await File.WriteAllBytesAsync(Path.Combine(Root, "disk.img"), Image);
        await File.WriteAllBytesAsync(Path.Combine(Root, "whole.img"), WholeBlocks);
        // in.tftpd drops to the "tftp" user: the directory and files must be readable by others.
        await Ftp.Vsftpd.Run("chmod", $"-R a+rX {Root}");
        Port = FreeUdpPort();
        NoTsizePort = FreeUdpPort();
        Start(Port, "");
        Start(NoTsizePort, "-r tsize");
        await WaitReadyAsync(Port);
        await WaitReadyAsync(NoTsizePort);
    }

    private void Start(int port, string extra)
    {
        var psi = new ProcessStartInfo("in.tftpd", $"-L -a 127.0.0.1:{port} -T 100000 {extra} -s {Root}")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        _servers.Add(Process.Start(psi) ?? throw new InvalidOperationException("in.tftpd did not start"));
    }

    /// <summary>Asks for a missing file until the server answers with an error packet.</summary>
    private static async Task WaitReadyAsync(int port)
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        byte[] rrq = [0, 1, .. "missing"u8, 0, .. "octet"u8, 0];
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            await udp.SendAsync(rrq, new IPEndPoint(IPAddress.Loopback, port));
            using var cts = new CancellationTokenSource(200);
            try
            {
                var r = await udp.ReceiveAsync(cts.Token);
                if (r.Buffer.Length >= 2 && r.Buffer[1] == 5)
                {
                    return;
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
            }
        }

        throw new TimeoutException($"in.tftpd on port {port} did not answer");
    }

    public static int FreeUdpPort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
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

        Directory.Delete(Root, recursive: true);
    }
}
