using System.Net;
using System.Net.Sockets;
using System.Text;

namespace UrlDisk.IntegrationTests.Ftp;

/// <summary>Where a <see cref="FaultyFtpServer"/> repeats the user name and password it was sent.</summary>
public enum FtpEcho
{
    None,

    /// <summary>PASS is refused with a 530 that quotes both.</summary>
    InRefusedLogin,

    /// <summary>The login succeeds; SIZE then fails with a 550 that quotes both.</summary>
    InLaterReply,

    /// <summary>The login succeeds; SIZE is answered with a malformed line that quotes the password.</summary>
    InMalformedReply,
}

/// <summary>
/// A minimal in-process FTP server for faults real servers do not produce on demand: the first
/// <see cref="FailingRetrs"/> RETRs send part of the data, close the data connection and answer 426; a stalled
/// RETR; missing REST/SIZE; endless preliminary (1xx) replies; replies that echo the credentials.
/// </summary>
internal sealed class FaultyFtpServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly byte[] _file;
    private readonly Task _accept;
    private int _retrs;
    private int _sessions;
    private int _pasv;

    public FaultyFtpServer(byte[] file, int failingRetrs, bool epsv = true, bool stall = false, bool rest = true, bool size = true,
        string? endlessPreliminaryAfter = null, FtpEcho echo = FtpEcho.None)
    {
        EndlessPreliminaryAfter = endlessPreliminaryAfter;
        Echo = echo;
        Rest = rest;
        Size = size;
        Stall = stall;
        _file = file;
        FailingRetrs = failingRetrs;
        Epsv = epsv;
        _listener.Start();
        _accept = AcceptLoopAsync();
    }

    public int FailingRetrs { get; }

    /// <summary>False: EPSV is answered 502, so clients must fall back to PASV.</summary>
    public bool Epsv { get; }

    /// <summary>True: RETR answers 150, then sends nothing, as a hung server would.</summary>
    public bool Stall { get; }

    /// <summary>False: FEAT omits REST STREAM and REST is answered 502.</summary>
    public bool Rest { get; }

    /// <summary>False: SIZE is answered 502.</summary>
    public bool Size { get; }

    /// <summary>
    /// The command (TYPE, or RETR for the reply after the data) that is answered only with "150 still working",
    /// every 100 ms, for ever: the conversation moves, the command never completes.
    /// </summary>
    public string? EndlessPreliminaryAfter { get; }

    public FtpEcho Echo { get; }

    public int Sessions => Volatile.Read(ref _sessions);
    public int PasvCommands => Volatile.Read(ref _pasv);
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public int Retrs => Volatile.Read(ref _retrs);

    private async Task AcceptLoopAsync()
    {
        var sessions = new List<Task>();
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                sessions.Add(SessionAsync(client));
            }
        }
        catch (OperationCanceledException)
        {
        }

        await Task.WhenAll(sessions);
    }

    private async Task SessionAsync(TcpClient client)
    {
        using var _ = client;
        Interlocked.Increment(ref _sessions);
        var stream = client.GetStream();
        var reader = new StreamReader(stream, Encoding.ASCII);
        async Task Reply(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), _stop.Token);
        async Task EndlessPreliminary()
        {
            while (true)
            {
                await Reply("150 still working");
                await Task.Delay(100, _stop.Token);
            }
        }

        TcpListener? pasv = null;
        long rest = 0;
        string user = "", password = "";
        try
        {
            await Reply("220 fake");
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                string cmd = line.Split(' ')[0].ToUpperInvariant();
                switch (cmd)
                {
                    case "USER":
                        user = line.Length > 5 ? line[5..] : "";
                        await Reply(Echo == FtpEcho.None ? "331 password please" : $"331 Password required for {user}");
                        break;
                    case "PASS" when Echo == FtpEcho.InRefusedLogin:
                        await Reply($"530 Login incorrect: user {user} with password {(line.Length > 5 ? line[5..] : "")}");
                        break;
                    case "PASS":
                        password = line.Length > 5 ? line[5..] : "";
                        await Reply("230 ok");
                        break;
                    case "TYPE" when EndlessPreliminaryAfter == "TYPE": await EndlessPreliminary(); break;
                    case "SIZE" when Echo == FtpEcho.InLaterReply: await Reply($"550 {user}:{password}: no such file"); break;
                    case "SIZE" when Echo == FtpEcho.InMalformedReply: await Reply($"what is {password}?"); break;
                    case "FEAT": await Reply(Rest ? "211-Features:\r\n EPSV\r\n SIZE\r\n REST STREAM\r\n211 End" : "211-Features:\r\n EPSV\r\n211 End"); break;
                    case "SIZE" when !Size: await Reply("502 SIZE not implemented"); break;
                    case "REST" when !Rest: await Reply("502 REST not implemented"); break;
                    case "TYPE": await Reply("200 binary"); break;
                    case "SIZE": await Reply($"213 {_file.Length}"); break;
                    case "MDTM": await Reply("213 20240102030405"); break;
                    case "EPSV" when !Epsv:
                        await Reply("502 EPSV not implemented");
                        break;
                    case "EPSV":
                    case "PASV":
                        pasv?.Stop();
                        pasv = new TcpListener(IPAddress.Loopback, 0);
                        pasv.Start();
                        int port = ((IPEndPoint)pasv.LocalEndpoint).Port;
                        if (cmd == "PASV")
                        {
                            Interlocked.Increment(ref _pasv);
                            await Reply($"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255}).");
                        }
                        else
                        {
                            await Reply($"229 Entering Extended Passive Mode (|||{port}|)");
                        }

                        break;
                    case "REST":
                        rest = long.Parse(line[5..], System.Globalization.CultureInfo.InvariantCulture);
                        await Reply("350 restarting");
                        break;
                    case "RETR":
                        using (var data = await pasv!.AcceptTcpClientAsync(_stop.Token))
                        {
                            pasv.Stop();
                            pasv = null;
                            await Reply("150 opening");
                            bool fail = Interlocked.Increment(ref _retrs) <= FailingRetrs;
                            if (Stall)
                            {
                                await Task.Delay(Timeout.Infinite, _stop.Token);
                            }

                            int count = (int)(_file.Length - rest);
                            int send = fail ? Math.Min(count, 1000) : count;
                            bool broken = fail;
                            try
                            {
                                await data.GetStream().WriteAsync(_file.AsMemory((int)rest, send), _stop.Token);
                            }
                            catch (IOException)
                            {
                                // The client stopped reading once it had its range: normal, answered 426 as vsftpd does.
                                broken = true;
                            }

                            if (broken && !fail)
                            {
                                // The client closed first; nothing more to deliver.
                                data.Client.LingerState = new LingerOption(true, 0);
                            }
                            else
                            {
                                // An orderly close: for a failing RETR the client sees the data end early, then 426.
                                data.Client.Shutdown(SocketShutdown.Send);
                            }

                            if (EndlessPreliminaryAfter == "RETR")
                            {
                                await EndlessPreliminary();
                            }

                            await Reply(broken ? "426 Connection closed; transfer aborted." : "226 done");
                        }

                        rest = 0;
                        break;
                    case "QUIT": await Reply("221 bye"); return;
                    default: await Reply("502 not implemented"); break;
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
        {
        }
        finally
        {
            pasv?.Stop();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accept;
        _stop.Dispose();
    }
}
