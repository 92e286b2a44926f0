using System.Buffers;
using UrlDisk.Nbd.Wire;

namespace UrlDisk.Nbd;

/// <summary>
/// One client: the handshake (<c>NbdConnection.Handshake.cs</c>), then requests served concurrently with replies
/// sent as they complete (<c>NbdConnection.Transmission.cs</c>). Only this connection ends on bad input.
/// </summary>
internal sealed partial class NbdConnection
{
    private readonly NbdExport _export;
    private readonly Stream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    /// <summary>Cancelled when the peer is gone: device work still running for it can stop.</summary>
    private readonly CancellationTokenSource _dead = new();

    private bool _noZeroes;
    private bool _structuredReplies;
    private bool _baseAllocation;

    public NbdConnection(NbdExport export, Stream stream, string peer)
    {
        _export = export;
        _stream = stream;
        Peer = peer;
    }

    public string Peer { get; }

    private NbdServerOptions Options => _export.Options;

    /// <summary>Serves the client until it disconnects, breaks the protocol, or <paramref name="stop"/> asks to finish.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        try
        {
            bool transmit;
            using (var handshakeTimeout = CancellationTokenSource.CreateLinkedTokenSource(stop))
            {
                handshakeTimeout.CancelAfter(Options.HandshakeTimeout);

                // A client that stops reading our option replies must not hold its slot either.
                using var abortWrites = handshakeTimeout.Token.Register(_dead.Cancel);
                transmit = await HandshakeAsync(handshakeTimeout.Token).ConfigureAwait(false);
            }

            // The handshake timer can fire just after the handshake succeeded, cancelling _dead before its registration
            // was removed; every reply would then be dropped while requests are still read, so end the connection instead.
            if (transmit && !_dead.IsCancellationRequested)
            {
                await TransmitAsync(stop).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or OperationCanceledException or ObjectDisposedException)
        {
            if (e is NbdProtocolException)
            {
                Log($"dropped: {e.Message}");
            }
        }
        finally
        {
            await _dead.CancelAsync().ConfigureAwait(false);
        }
    }

    private void Log(string message) => Options.Log?.WriteLine($"urldisk: nbd client {Peer}: {message}");

    private async ValueTask ReadExactlyAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        => await _stream.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);

    /// <summary>Reads and drops <paramref name="count"/> bytes in small pieces, so a huge length costs no memory.</summary>
    private async ValueTask SkipAsync(long count, CancellationToken cancellationToken)
    {
        byte[] scratch = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (count > 0)
            {
                int n = (int)Math.Min(count, scratch.Length);
                await ReadExactlyAsync(scratch.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                count -= n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <summary>Writes one message (or several pieces of one) without interleaving with other replies.</summary>
    private async ValueTask SendAsync(ReadOnlyMemory<byte> first, ReadOnlyMemory<byte> second = default)
    {
        await _writeLock.WaitAsync(_dead.Token).ConfigureAwait(false);
        try
        {
            await _stream.WriteAsync(first, _dead.Token).ConfigureAwait(false);
            if (!second.IsEmpty)
            {
                await _stream.WriteAsync(second, _dead.Token).ConfigureAwait(false);
            }

            await _stream.FlushAsync(_dead.Token).ConfigureAwait(false);
        }
        catch
        {
            // A reply that cannot be written means the peer is gone; stop the work done for it.
            await _dead.CancelAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            _writeLock.Release();
        }
    }
}
