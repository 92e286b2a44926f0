using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using UrlDisk.Diagnostics;

namespace UrlDisk.Sources.Tftp;

/// <summary>
/// One TFTP read transfer (RFC 1350) with option negotiation (RFC 2347: blksize 2348, tsize/timeout 2349,
/// windowsize 7440). Started by <see cref="StartAsync"/>, which learns the negotiated options, then drained by
/// <see cref="CopyToAsync"/>. Lost packets are recovered by re-acknowledging the last block received in order
/// after a silent wait that doubles each time.
/// </summary>
internal sealed class TftpTransfer : IDisposable
{
    private static readonly KeyValuePair<string, object?> s_tag = new("protocol", "tftp");

    private readonly TftpSettings _settings;
    private readonly Socket _socket;
    private readonly byte[] _receive = new byte[65536];
    private readonly byte[] _send = new byte[1024];
    private readonly IPEndPoint _anyEndPoint;
    private IPEndPoint _peer;
    private CancellationTokenSource? _wait;
    private byte[]? _firstData;
    private ushort _firstBlock;

    private TftpTransfer(TftpSettings settings, IPEndPoint server)
    {
        _settings = settings;
        _peer = server;
        _socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        _anyEndPoint = new IPEndPoint(server.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
        _socket.Bind(new IPEndPoint(server.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0));
        // Room for a whole window of large blocks while the sink writes.
        _socket.ReceiveBufferSize = Math.Max(_socket.ReceiveBufferSize, 4 * 1024 * 1024);
    }

    public int BlockSize { get; private set; } = 512;
    public int WindowSize { get; private set; } = 1;
    public long? TransferSize { get; private set; }

    /// <summary>True when the server answered the options with an OACK.</summary>
    public bool OptionsAccepted { get; private set; }

    /// <summary>
    /// Sends the RRQ and waits for the first answer. Returns null when options were sent and the server refused
    /// them with an error: the caller then tries again without options (RFC 2347 §5 allows servers to do that).
    /// </summary>
    public static async Task<TftpTransfer?> StartAsync(TftpSettings settings, IPEndPoint server, bool withOptions, CancellationToken cancellationToken)
    {
        var t = new TftpTransfer(settings, server);
        try
        {
            return await t.RequestAsync(server, withOptions, cancellationToken).ConfigureAwait(false) ? t : Dispose(t);
        }
        catch
        {
            t.Dispose();
            throw;
        }

        static TftpTransfer? Dispose(TftpTransfer t)
        {
            t.Dispose();
            return null;
        }
    }

    private async Task<bool> RequestAsync(IPEndPoint server, bool withOptions, CancellationToken cancellationToken)
    {
        var options = new List<KeyValuePair<string, string>>();
        if (withOptions)
        {
            options.Add(new("blksize", _settings.BlockSize.ToString(CultureInfo.InvariantCulture)));
            if (_settings.RequestSize)
            {
                options.Add(new("tsize", "0"));
            }

            // The option carries whole seconds only; a shorter timeout is ours alone, so the server keeps its own.
            double seconds = _settings.Timeout.TotalSeconds;
            if (seconds >= 1 && seconds == Math.Floor(seconds))
            {
                options.Add(new("timeout", ((int)seconds).ToString(CultureInfo.InvariantCulture)));
            }
            if (_settings.WindowSize > 1)
            {
                options.Add(new("windowsize", _settings.WindowSize.ToString(CultureInfo.InvariantCulture)));
            }
        }

        var rrq = new byte[TftpCodecLimits.RequestBytes(_settings.FileName, options)];
        int rrqLength = TftpCodec.WriteReadRequest(rrq, _settings.FileName, options);
        for (int attempt = 0; ; attempt++)
        {
            UrlDiskMetrics.Requests.Add(1, s_tag);
            await _socket.SendToAsync(rrq.AsMemory(0, rrqLength), SocketFlags.None, server, cancellationToken).ConfigureAwait(false);

            // Only an answer ends the wait: junk is dropped and the wait goes on to its deadline, so a server (or
            // anyone) sending garbage cannot make us send requests faster, nor wait for ever.
            long deadline = Deadline(attempt);
            while (await ReceiveAsync(deadline, cancellationToken).ConfigureAwait(false) is { } r)
            {
                // The server answers from a new port (its transfer ID); only its address must match.
                if (!r.From.Address.Equals(server.Address))
                {
                    continue;
                }

                switch (HandleFirstAnswer(r.Length, withOptions))
                {
                    case FirstAnswer.OptionAck:
                        _peer = r.From;
                        await SendAckAsync(0, cancellationToken).ConfigureAwait(false);
                        return true;
                    case FirstAnswer.Data:
                        _peer = r.From;
                        return true;
                    case FirstAnswer.OptionsRefused:
                        return false;
                }
            }

            if (attempt >= _settings.Retries)
            {
                throw new SourceException($"{_settings.DisplayUrl}: no answer from the server after {attempt + 1} read requests (options timeout, retries)") { IsTransient = true };
            }

            UrlDiskMetrics.Retries.Add(1, s_tag);
        }
    }

    private enum FirstAnswer
    {
        Ignore,
        OptionAck,
        Data,
        OptionsRefused,
    }

    private FirstAnswer HandleFirstAnswer(int length, bool withOptions)
    {
        if (!TftpCodec.TryRead(_receive.AsSpan(0, length), out var packet))
        {
            return FirstAnswer.Ignore;
        }

        switch (packet.Opcode)
        {
            case TftpOpcode.OptionAck:
                AcceptOptions(packet.Options!);
                OptionsAccepted = true;
                return FirstAnswer.OptionAck;
            case TftpOpcode.Data:
                // No OACK: the server ignores options and sends 512-byte blocks in lock-step.
                if (packet.Data.Length > 512)
                {
                    throw new SourceException($"{_settings.DisplayUrl}: the server sent a {packet.Data.Length}-byte block without negotiating a block size");
                }

                _firstBlock = packet.Block;
                _firstData = packet.Data.ToArray();
                return FirstAnswer.Data;
            case TftpOpcode.Error when withOptions && packet.ErrorCode is TftpCodec.OptionsRefused or 0 or 4:
                return FirstAnswer.OptionsRefused;
            case TftpOpcode.Error:
                throw ServerError(packet);
            default:
                return FirstAnswer.Ignore;
        }
    }

    private void AcceptOptions(Dictionary<string, string> options)
    {
        foreach (var (name, value) in options)
        {
            bool ok = long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long n);
            switch (name)
            {
                case "blksize" when ok && n >= 8 && n <= _settings.BlockSize:
                    BlockSize = (int)n;
                    break;
                case "windowsize" when ok && n >= 1 && n <= _settings.WindowSize:
                    WindowSize = (int)n;
                    break;
                case "tsize" when ok:
                    TransferSize = n;
                    break;
                case "tsize":
                    throw new SourceException(
                        $"{_settings.DisplayUrl}: the server announced tsize={value}, which is not a size in bytes (a whole number from 0 to {long.MaxValue})");
                case "timeout" when ok:
                    break;
                default:
                    // RFC 2347: a server may only narrow what was asked; anything else is a protocol error.
                    throw new SourceException($"{_settings.DisplayUrl}: the server acknowledged option {name}={value}, which was not requested in that form");
            }
        }
    }

    /// <summary>Receives the whole file, handing each block's bytes to <paramref name="sink"/> in order.</summary>
    public async Task CopyToAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken cancellationToken)
    {
        ushort expected = 1;
        int sinceAck = 0;
        int silentWaits = 0;
        bool gapReported = false;
        if (_firstData is not null)
        {
            if (_firstBlock != 1)
            {
                throw new SourceException($"{_settings.DisplayUrl}: the server started with block {_firstBlock}, not 1");
            }

            var first = _firstData;
            _firstData = null;
            await sink(first, cancellationToken).ConfigureAwait(false);
            await SendAckAsync(1, cancellationToken).ConfigureAwait(false);
            if (first.Length < BlockSize)
            {
                return;
            }

            expected = 2;
        }

        // Only the next block in order moves the deadline: duplicates and junk do not keep a transfer alive.
        long deadline = Deadline(0);
        while (true)
        {
            var received = await ReceiveAsync(deadline, cancellationToken).ConfigureAwait(false);
            if (received is not { } r)
            {
                if (++silentWaits > _settings.Retries)
                {
                    throw new SourceException($"{_settings.DisplayUrl}: no data from the server for {silentWaits} waits (options timeout, retries)") { IsTransient = true };
                }

                // Tell the server where we are; it sends again from the block after.
                UrlDiskMetrics.Retries.Add(1, s_tag);
                await SendAckAsync((ushort)(expected - 1), cancellationToken).ConfigureAwait(false);
                sinceAck = 0;
                deadline = Deadline(silentWaits);
                continue;
            }

            if (!r.From.Equals(_peer))
            {
                // RFC 1350: a packet from another transfer ID gets an error, and the transfer goes on.
                int n = TftpCodec.WriteError(_send, 5, "Unknown transfer ID");
                await _socket.SendToAsync(_send.AsMemory(0, n), SocketFlags.None, r.From, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (!TftpCodec.TryRead(_receive.AsSpan(0, r.Length), out var packet))
            {
                continue;
            }

            if (packet.Opcode == TftpOpcode.Error)
            {
                throw ServerError(packet);
            }

            if (packet.Opcode != TftpOpcode.Data)
            {
                continue;
            }

            if (packet.Block != expected)
            {
                // A duplicate or a block after a gap: ask once for everything after the last block in order.
                if (!gapReported)
                {
                    await SendAckAsync((ushort)(expected - 1), cancellationToken).ConfigureAwait(false);
                    gapReported = true;
                    sinceAck = 0;
                }

                continue;
            }

            if (packet.Data.Length > BlockSize)
            {
                throw new SourceException($"{_settings.DisplayUrl}: block {packet.Block} has {packet.Data.Length} bytes, more than the {BlockSize} negotiated");
            }

            bool last = packet.Data.Length < BlockSize;
            int length = packet.Data.Length;
            silentWaits = 0;
            deadline = Deadline(0);
            gapReported = false;
            sinceAck++;
            if (last || sinceAck >= WindowSize)
            {
                // Acknowledge before handing the block on: the server's next window travels while the sink writes.
                // The block stays in the receive buffer until the next receive, which comes after the sink.
                await SendAckAsync(expected, cancellationToken).ConfigureAwait(false);
                sinceAck = 0;
            }

            await sink(_receive.AsMemory(4, length), cancellationToken).ConfigureAwait(false);

            if (last)
            {
                return;
            }

            expected++; // wraps to 0 after 65535, as servers roll over
        }
    }

    /// <summary>When the wait after <paramref name="silentWaits"/> silent ones ends: the timeout, doubling up to 8 times it.</summary>
    private long Deadline(int silentWaits)
        => Stopwatch.GetTimestamp() + (long)((_settings.Timeout * Math.Min(1 << Math.Min(silentWaits, 10), 8)).TotalSeconds * Stopwatch.Frequency);

    private async Task SendAckAsync(ushort block, CancellationToken cancellationToken)
    {
        int n = TftpCodec.WriteAck(_send, block);
        await _socket.SendToAsync(_send.AsMemory(0, n), SocketFlags.None, _peer, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The next datagram, or null when <paramref name="deadline"/> (a <see cref="Stopwatch"/> timestamp) passes first.</summary>
    private async Task<(int Length, IPEndPoint From)?> ReceiveAsync(long deadline, CancellationToken cancellationToken)
    {
        var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
        if (wait <= TimeSpan.Zero)
        {
            return null;
        }

        // One timer source per transfer, re-armed for each datagram: a new one per packet costs more than the packet.
        if (_wait is null || !_wait.TryReset())
        {
            _wait?.Dispose();
            _wait = new CancellationTokenSource();
        }

        _wait.CancelAfter(wait);
        using var link = cancellationToken.CanBeCanceled ? cancellationToken.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _wait) : default;
        try
        {
            var result = await _socket.ReceiveFromAsync(_receive, SocketFlags.None, _anyEndPoint, _wait.Token).ConfigureAwait(false);
            UrlDiskMetrics.BytesFetched.Add(result.ReceivedBytes, s_tag);
            return (result.ReceivedBytes, (IPEndPoint)result.RemoteEndPoint);
        }
        catch (OperationCanceledException)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return null;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            // ICMP port unreachable from an earlier send: the server is not there (yet); treat as silence.
            return null;
        }
    }

    private SourceException ServerError(TftpPacket packet)
        => new($"{_settings.DisplayUrl}: the server answered error {packet.ErrorCode}: {packet.ErrorMessage}");

    public void Dispose()
    {
        _socket.Dispose();
        _wait?.Dispose();
    }
}

/// <summary>Sizes of encoded requests, to allocate exactly.</summary>
internal static class TftpCodecLimits
{
    public static int RequestBytes(string fileName, IEnumerable<KeyValuePair<string, string>> options)
        => 2 + System.Text.Encoding.UTF8.GetByteCount(fileName) + 1 + 6
           + options.Sum(o => System.Text.Encoding.UTF8.GetByteCount(o.Key) + System.Text.Encoding.UTF8.GetByteCount(o.Value) + 2);
}
