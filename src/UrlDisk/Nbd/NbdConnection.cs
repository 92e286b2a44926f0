using System.Net.Sockets;
using UrlDisk.Nbd.Wire;

namespace UrlDisk.Nbd;

/// <summary>
/// One client, served on a thread of its own with blocking socket I/O, as nbdkit serves each connection: the kernel
/// wakes this thread when a request arrives, and a request the device answers at once (a cache hit, a local file) is
/// answered on it too, so a small read costs one wake-up and no thread-pool hand-off however busy the CPUs are.
/// The handshake is in <c>NbdConnection.Handshake.cs</c>, the request loop in <c>NbdConnection.Transmission.cs</c>.
/// Only this connection ends on bad input.
/// </summary>
internal sealed partial class NbdConnection
{
    /// <summary>Requests are read through this buffer: many pipelined headers come in with one receive.</summary>
    private const int ReadBufferSize = 16 * 1024;

    private readonly NbdExport _export;
    private readonly Socket _socket;
    private readonly byte[] _readBuffer = new byte[ReadBufferSize];
    private int _readStart;
    private int _readEnd;

    /// <summary>Cancelled when the peer is gone or cut: device work still running for it can stop.</summary>
    private readonly CancellationTokenSource _dead = new();

    /// <summary>After NBD_OPT_STARTTLS every byte goes through this; null while in plaintext.</summary>
    private System.Net.Security.SslStream? _tls;

    private bool _noZeroes;
    private bool _structuredReplies;
    private bool _baseAllocation;
    private bool _allocationDepth;

    public NbdConnection(NbdExport export, Socket socket, string peer)
    {
        _export = export;
        _socket = socket;
        Peer = peer;
    }

    public string Peer { get; }

    private NbdServerOptions Options => _export.Options;

    /// <summary>Serves the client until it disconnects, breaks the protocol, or <paramref name="stop"/> asks to finish. Blocks.</summary>
    public void Run(CancellationToken stop)
    {
        try
        {
            if (Handshake())
            {
                Transmit(stop);
            }
        }
        catch (Exception e) when (IsConnectionEnd(e))
        {
            if (e is NbdProtocolException)
            {
                Log($"dropped: {e.Message}");
            }
        }
        finally
        {
            _dead.Cancel();
            _tls?.Dispose();
            _socket.Dispose();
            _dead.Dispose();
        }
    }

    private static bool IsConnectionEnd(Exception e)
        => e is IOException or SocketException or EndOfStreamException or OperationCanceledException or ObjectDisposedException;

    private void Log(string message) => Options.Log?.WriteLine($"urldisk: nbd client {Peer}: {message}");

    /// <summary>Cuts the connection: device work for it is cancelled, blocked reads and sends return.</summary>
    private void Abort()
    {
        try
        {
            _dead.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>At least <paramref name="count"/> bytes in the read buffer (at most its size); end of stream throws.</summary>
    private ReadOnlySpan<byte> Peek(int count)
    {
        if (_readEnd - _readStart < count)
        {
            if (_readStart > 0)
            {
                _readBuffer.AsSpan(_readStart, _readEnd - _readStart).CopyTo(_readBuffer);
                _readEnd -= _readStart;
                _readStart = 0;
            }

            while (_readEnd < count)
            {
                int n = ReceiveSome(_readBuffer.AsSpan(_readEnd));
                if (n == 0)
                {
                    throw new EndOfStreamException();
                }

                _readEnd += n;
            }
        }

        return _readBuffer.AsSpan(_readStart, count);
    }

    private void Consume(int count) => _readStart += count;

    private void ReadExactly(Span<byte> destination)
    {
        int buffered = Math.Min(destination.Length, _readEnd - _readStart);
        _readBuffer.AsSpan(_readStart, buffered).CopyTo(destination);
        _readStart += buffered;
        destination = destination[buffered..];
        if (destination.Length == 0)
        {
            return;
        }

        if (destination.Length < ReadBufferSize / 2)
        {
            Peek(destination.Length).CopyTo(destination);
            Consume(destination.Length);
            return;
        }

        // Large payloads go straight to their buffer.
        while (destination.Length > 0)
        {
            int n = ReceiveSome(destination);
            if (n == 0)
            {
                throw new EndOfStreamException();
            }

            destination = destination[n..];
        }
    }

    /// <summary>Reads and drops <paramref name="count"/> bytes, so a huge length costs no memory.</summary>
    private void Skip(long count)
    {
        while (count > 0)
        {
            int n = (int)Math.Min(count, ReadBufferSize);
            Peek(Math.Min(n, ReadBufferSize));
            Consume(n);
            count -= n;
        }
    }

    private int ReceiveSome(Span<byte> destination) => _tls is null ? _socket.Receive(destination, SocketFlags.None) : _tls.Read(destination);

    /// <summary>Writes during the handshake, before the reply writer exists.</summary>
    private void Send(ReadOnlySpan<byte> bytes)
    {
        if (_tls is not null)
        {
            _tls.Write(bytes);
            return;
        }

        while (bytes.Length > 0)
        {
            bytes = bytes[_socket.Send(bytes, SocketFlags.None)..];
        }
    }
}
