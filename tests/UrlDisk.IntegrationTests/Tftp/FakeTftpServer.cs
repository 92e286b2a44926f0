using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using UrlDisk.Sources.Tftp;

namespace UrlDisk.IntegrationTests.Tftp;

/// <summary>Garbage a <see cref="FakeTftpServer"/> sends instead of a real answer.</summary>
internal enum TftpJunk
{
    None,

    /// <summary>Every RRQ is answered with one undecodable datagram, and nothing else.</summary>
    InsteadOfFirstAnswer,

    /// <summary>The OACK is sent, then only undecodable datagrams and ACKs (a wrong opcode), a few every 50 ms, forever.</summary>
    InsteadOfData,
}

/// <summary>
/// An in-process TFTP server for what tftpd-hpa 5.2 cannot do: windowsize (RFC 7440) with blocks lost inside a
/// window, refusing options with error 8, a tsize that lies about the file, and junk datagrams. Serves one file;
/// one transfer at a time.
/// </summary>
internal sealed class FakeTftpServer : IAsyncDisposable
{
    private readonly Socket _listen = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly byte[] _file;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly HashSet<int> _lostOnce;

    public FakeTftpServer(byte[] file, bool refuseOptions = false, bool offerTsize = true, IEnumerable<int>? loseBlocksOnce = null,
        string? announcedTsize = null, TftpJunk junk = TftpJunk.None)
    {
        _file = file;
        AnnouncedTsize = announcedTsize;
        Junk = junk;
        RefuseOptions = refuseOptions;
        OfferTsize = offerTsize;
        _lostOnce = [.. loseBlocksOnce ?? []];
        _listen.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _loop = ServeAsync();
    }

    public bool RefuseOptions { get; }
    public bool OfferTsize { get; }

    /// <summary>The tsize sent in the OACK instead of the file's real length (a lying or broken server).</summary>
    public string? AnnouncedTsize { get; }

    public TftpJunk Junk { get; }
    public int Port => ((IPEndPoint)_listen.LocalEndPoint!).Port;
    public List<Dictionary<string, string>> Requests { get; } = [];
    public int WindowsResent { get; private set; }

    private async Task ServeAsync()
    {
        var buf = new byte[2048];
        try
        {
            while (true)
            {
                var r = await _listen.ReceiveFromAsync(buf, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                var client = (IPEndPoint)r.RemoteEndPoint;
                Dictionary<string, string> options;
                if (!TftpCodec.TryRead(buf.AsSpan(0, r.ReceivedBytes), out var rrq) || rrq.Opcode != TftpOpcode.ReadRequest)
                {
                    continue;
                }

                options = rrq.Options!;
                lock (Requests)
                {
                    Requests.Add(options);
                }

                await TransferAsync(client, options);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task TransferAsync(IPEndPoint client, Dictionary<string, string> requested)
    {
        using var tid = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        tid.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var packet = new byte[70000];
        if (Junk == TftpJunk.InsteadOfFirstAnswer)
        {
            await tid.SendToAsync(new byte[] { 0, 99, 1, 2, 3 }, SocketFlags.None, client, _stop.Token);
            return;
        }

        if (requested.Count > 0 && RefuseOptions)
        {
            int e = TftpCodec.WriteError(packet, TftpCodec.OptionsRefused, "options not supported here");
            await tid.SendToAsync(packet.AsMemory(0, e), SocketFlags.None, client, _stop.Token);
            return;
        }

        int blksize = 512, window = 1;
        var oack = new List<KeyValuePair<string, string>>();
        if (requested.TryGetValue("blksize", out var b))
        {
            blksize = Math.Min(int.Parse(b, System.Globalization.CultureInfo.InvariantCulture), 4096);
            oack.Add(new("blksize", blksize.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        if (requested.TryGetValue("windowsize", out var w))
        {
            window = Math.Min(int.Parse(w, System.Globalization.CultureInfo.InvariantCulture), 4);
            oack.Add(new("windowsize", window.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        if (requested.ContainsKey("tsize") && OfferTsize)
        {
            oack.Add(new("tsize", AnnouncedTsize ?? _file.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        int blocks = (_file.Length / blksize) + 1;
        int acked = 0;
        var ackBuf = new byte[64];
        if (oack.Count > 0)
        {
            int n = TftpCodec.WriteOptionAck(packet, oack);
            acked = -1;
            while (acked < 0)
            {
                await tid.SendToAsync(packet.AsMemory(0, n), SocketFlags.None, client, _stop.Token);
                var ack = await ReceiveAckAsync(tid, ackBuf);
                if (ack == 0)
                {
                    acked = 0;
                }
            }
        }

        if (Junk == TftpJunk.InsteadOfData)
        {
            await SendJunkUntilStoppedAsync(tid, client);
            return;
        }

        while (acked < blocks)
        {
            int first = acked + 1;
            int last = Math.Min(blocks, acked + window);
            for (int block = first; block <= last; block++)
            {
                lock (_lostOnce)
                {
                    if (_lostOnce.Remove(block))
                    {
                        continue; // "lost" on its first transmission
                    }
                }

                int off = (block - 1) * blksize;
                int len = Math.Min(blksize, _file.Length - off);
                int n = TftpCodec.WriteData(packet, (ushort)block, _file.AsSpan(off, len));
                await tid.SendToAsync(packet.AsMemory(0, n), SocketFlags.None, client, _stop.Token);
            }

            var a = await ReceiveAckAsync(tid, ackBuf);
            if (a is { } got && got >= acked && got <= last)
            {
                if (got < last)
                {
                    WindowsResent++;
                }

                acked = got;
            }
            else
            {
                WindowsResent++;
            }
        }
    }

    /// <summary>Junk, a few datagrams every 50 ms, until the server is disposed: never a block, never silence.</summary>
    private async Task SendJunkUntilStoppedAsync(Socket tid, IPEndPoint client)
    {
        byte[] undecodable = [0, 3, 0];
        byte[] wrongOpcode = [0, 4, 0, 1];
        while (true)
        {
            await tid.SendToAsync(undecodable, SocketFlags.None, client, _stop.Token);
            await tid.SendToAsync(wrongOpcode, SocketFlags.None, client, _stop.Token);
            await Task.Delay(50, _stop.Token);
        }
    }

    /// <summary>The block number of the next ACK, or null after 150 ms of silence.</summary>
    private async Task<int?> ReceiveAckAsync(Socket tid, byte[] buf)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        cts.CancelAfter(150);
        try
        {
            var r = await tid.ReceiveFromAsync(buf, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), cts.Token);
            return r.ReceivedBytes == 4 && buf[1] == 4 ? BinaryPrimitives.ReadUInt16BigEndian(buf.AsSpan(2)) : null;
        }
        catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listen.Dispose();
        await _loop;
        _stop.Dispose();
    }
}
