using System.Buffers;
using System.Net.Sockets;
using UrlDisk.Nbd.Wire;
using UrlDisk.Specs;

namespace UrlDisk.Nbd;

/// <summary>
/// The transmission phase: this connection's thread reads requests and starts each one at once; a request the device
/// answers synchronously is replied to before the next is read, the others reply from wherever they complete, in any
/// order. Requests and payload bytes in flight are bounded per connection (<see cref="ConnectionBudget"/>), so a client
/// that sends faster than the device answers is simply not read from until replies drain, and one that stops reading
/// its replies is cut after the reply timeout.
/// </summary>
internal sealed partial class NbdConnection
{
    private ConnectionBudget? _budget;
    private ReplyWriter? _writer;
    private int _readerThread;
    private int _inFlight;
    private readonly ManualResetEventSlim _drained = new(false);

    private void Transmit(CancellationToken stop)
    {
        _readerThread = Environment.CurrentManagedThreadId;
        _budget = new ConnectionBudget(Options.MaxInFlightRequests);
        _writer = new ReplyWriter(_socket, ReplyFailed, _tls);
        _socket.SendTimeout = (int)Math.Clamp(Options.ReplyTimeout.TotalMilliseconds, 1, int.MaxValue);
        _inFlight = 1; // the reader's own hold, dropped when it stops reading
        _export.EnterTransmission();
        try
        {
            // Stopping ends the reading: the blocked receive returns end of stream, and what is in flight is answered.
            using (stop.Register(StopReading))
            {
                try
                {
                    ReadRequests(stop);
                }
                catch (Exception e) when (IsConnectionEnd(e))
                {
                    if (e is NbdProtocolException)
                    {
                        Log($"dropped: {e.Message}");
                    }
                }
            }
        }
        finally
        {
            // NBD_CMD_DISC, end of stream, garbage or shutdown: finish what is in flight, then close.
            Finish();
            Drain(stop);
            _writer.Close();
            _budget.Close();
            _export.LeaveTransmission();
        }
    }

    private void StopReading()
    {
        // The reader may be waiting for budget rather than for the socket.
        _budget!.Close();
        try
        {
            _socket.Shutdown(SocketShutdown.Receive);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>A reply could not be sent: the peer is gone, or its replies made no progress for the reply timeout.</summary>
    private void ReplyFailed(Exception e)
    {
        if (e is SocketException { SocketErrorCode: SocketError.WouldBlock or SocketError.TimedOut })
        {
            Log($"dropped: its replies made no progress for {Options.ReplyTimeout.TotalSeconds:0.#} s");
        }

        _budget!.Close();
        Abort();
    }

    /// <summary>
    /// Waits for the requests in flight. On shutdown the wait is bounded: replies a client does not read
    /// would otherwise keep the server from ever exiting, so after the grace period the connection is cut.
    /// </summary>
    private void Drain(CancellationToken stop)
    {
        try
        {
            _drained.Wait(stop);
            return;
        }
        catch (OperationCanceledException)
        {
        }

        if (!_drained.Wait(Options.ShutdownGrace))
        {
            Log($"cut after {Options.ShutdownGrace.TotalSeconds:0.#} s of shutdown with requests still in flight");
            Abort();
            _drained.Wait();
        }
    }

    private void ReadRequests(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            NbdRequest.TryRead(Peek(NbdRequest.CompactSize), out var request);
            Consume(NbdRequest.CompactSize);
            if (request.Command == NbdCommand.Disconnect)
            {
                return;
            }

            var (error, message) = Validate(request);
            long payloadLength = request.Command == NbdCommand.Write ? (long)request.Length : 0;
            if (error != NbdError.None)
            {
                // The client still sends the data of a refused WRITE: consume it to stay in step.
                Skip(payloadLength);
                Interlocked.Increment(ref _inFlight);
                _writer!.Send(ErrorReply(request, error, message, () => Finish()), inline: true);
                continue;
            }

            long amount = request.Command is NbdCommand.Read or NbdCommand.Write ? (long)request.Length : 0;
            if (!_budget!.Acquire(amount, _export.Share))
            {
                return;
            }

            byte[]? payload = null;
            try
            {
                if (payloadLength > 0)
                {
                    payload = ArrayPool<byte>.Shared.Rent((int)payloadLength);
                    ReadExactly(payload.AsSpan(0, (int)payloadLength));
                }
            }
            catch
            {
                if (payload is not null)
                {
                    ArrayPool<byte>.Shared.Return(payload);
                }

                _budget.Release(amount);
                throw;
            }

            Interlocked.Increment(ref _inFlight);

            // Started inline: a request the device answers at once is replied to on this thread before the next is
            // read. Anything slower returns control here at its first real await.
            _ = ServeAsync(request, payload, amount);
        }
    }

    private void Finish()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0)
        {
            _drained.Set();
        }
    }

    /// <summary>Sends a request's reply; when it is written (or dropped) its payload budget comes back.</summary>
    private void Reply(ArraySegment<byte>[] segments, byte[]? rented, long amount)
    {
        _writer!.Send(new Reply(segments, () =>
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }

            _budget!.Release(amount);
            Finish();
        }), inline: Environment.CurrentManagedThreadId == _readerThread);
    }

    /// <summary>Checks a request against the protocol and the export before any work or allocation.</summary>
    private (NbdError Error, string Message) Validate(in NbdRequest r)
    {
        var allowed = r.Command switch
        {
            NbdCommand.Read => _structuredReplies ? NbdCommandFlags.DontFragment : NbdCommandFlags.None,
            NbdCommand.Write or NbdCommand.Trim => NbdCommandFlags.Fua,
            NbdCommand.WriteZeroes => NbdCommandFlags.Fua | NbdCommandFlags.NoHole | NbdCommandFlags.FastZero,
            NbdCommand.BlockStatus => NbdCommandFlags.ReqOne,
            NbdCommand.Flush or NbdCommand.Cache => NbdCommandFlags.None,
            _ => (NbdCommandFlags?)null,
        };
        if (allowed is null)
        {
            return (NbdError.Invalid, $"unknown command {(ushort)r.Command}");
        }

        if ((r.Flags & ~allowed.Value) != 0)
        {
            return (NbdError.Invalid, $"flags 0x{(ushort)r.Flags:x} are not valid for {r.Command}");
        }

        bool writes = r.Command is NbdCommand.Write or NbdCommand.Trim or NbdCommand.WriteZeroes;
        if (writes && !_export.Writable)
        {
            return (NbdError.Perm, "the export is read-only");
        }

        if (r.Command == NbdCommand.BlockStatus && !_baseAllocation && !_allocationDepth)
        {
            return (NbdError.Invalid, "no metadata context was selected (NBD_OPT_SET_META_CONTEXT base:allocation)");
        }

        if (r.Command == NbdCommand.BlockStatus && r.Length == 0)
        {
            return (NbdError.Invalid, "block status of an empty range");
        }

        if (r.Command == NbdCommand.Flush)
        {
            return (NbdError.None, "");
        }

        ulong size = (ulong)_export.Device.Length;
        if (r.Offset > size || r.Length > size - r.Offset)
        {
            return (r.Command is NbdCommand.Write or NbdCommand.WriteZeroes ? NbdError.NoSpace : NbdError.Invalid,
                $"range {r.Offset}+{r.Length} is past the end of the export ({size} bytes)");
        }

        if (r.Command is NbdCommand.Read or NbdCommand.Write && r.Length > NbdServerOptions.MaxPayload)
        {
            return (NbdError.Invalid, $"{r.Length} bytes is more than the maximum block size {NbdServerOptions.MaxPayload}");
        }

        uint min = _export.MinimumBlockSize;
        if (min > 1 && r.Command is NbdCommand.Read or NbdCommand.Write && (r.Offset % min != 0 || r.Length % min != 0))
        {
            return (NbdError.Invalid, $"request is not aligned to the minimum block size {min}");
        }

        return (NbdError.None, "");
    }

    private async Task ServeAsync(NbdRequest request, byte[]? payload, long amount)
    {
        bool replied = false;
        try
        {
            replied = await ExecuteAsync(request, payload, amount).ConfigureAwait(false);
        }
        catch (Exception e) when (IsConnectionEnd(e))
        {
            // The connection is going away; the reader will notice.
        }
        catch (Exception e)
        {
            Log($"unexpected {e.GetType().Name} serving {request.Command}: {Redact.Spec(e.Message)}");
        }
        finally
        {
            if (payload is not null)
            {
                ArrayPool<byte>.Shared.Return(payload);
            }

            if (!replied)
            {
                _budget!.Release(amount);
                Finish();
            }
        }
    }

    /// <summary>Runs the request and hands its reply to the writer; true once the reply (and the budget with it) is handed over.</summary>
    private async ValueTask<bool> ExecuteAsync(NbdRequest r, byte[]? payload, long amount)
    {
        var device = _export.Device;
        long offset = (long)r.Offset;
        long length = (long)r.Length;
        var ct = _dead.Token;
        if (r.Command == NbdCommand.Read)
        {
            return await ReadAsync(r, amount, ct).ConfigureAwait(false);
        }

        if (r.Command == NbdCommand.BlockStatus)
        {
            return await BlockStatusAsync(r, amount, ct).ConfigureAwait(false);
        }

        try
        {
            var fua = (r.Flags & NbdCommandFlags.Fua) != 0 ? WriteOptions.ForceUnitAccess : WriteOptions.None;
            switch (r.Command)
            {
                case NbdCommand.Write:
                    await device.WriteAsync(offset, payload.AsMemory(0, (int)length), fua, ct).ConfigureAwait(false);
                    break;
                case NbdCommand.Flush:
                    await device.FlushAsync(ct).ConfigureAwait(false);
                    break;
                case NbdCommand.Trim:
                    await device.TrimAsync(offset, length, ct).ConfigureAwait(false);
                    if (fua != WriteOptions.None)
                    {
                        await device.FlushAsync(ct).ConfigureAwait(false);
                    }

                    break;
                case NbdCommand.WriteZeroes:
                    var options = fua;
                    if ((r.Flags & NbdCommandFlags.NoHole) != 0)
                    {
                        options |= WriteOptions.NoHole;
                    }

                    if ((r.Flags & NbdCommandFlags.FastZero) != 0)
                    {
                        options |= WriteOptions.FastZero;
                    }

                    await device.WriteZeroesAsync(offset, length, options, ct).ConfigureAwait(false);
                    break;
                case NbdCommand.Cache:
                    await device.PrefetchAsync(offset, length, ct).ConfigureAwait(false);
                    break;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            ReplyError(r, e, amount);
            return true;
        }

        var bytes = new byte[SimpleReplyHeader.Size];
        new SimpleReplyHeader(NbdError.None, r.Cookie).Write(bytes);
        Reply([bytes], null, amount);
        return true;
    }

    private void ReplyError(in NbdRequest r, Exception e, long amount)
    {
        var reply = ErrorReply(r, NbdErrorMapping.ToNbdError(e), Redact.Spec(e.Message), null);
        Reply(reply.Segments, null, amount);
    }

    /// <summary>An error chunk when structured replies are on (a READ must never get a simple reply then), else a simple reply.</summary>
    private Reply ErrorReply(in NbdRequest r, NbdError error, string message, Action? done)
    {
        if (!_structuredReplies)
        {
            var simple = new byte[SimpleReplyHeader.Size];
            new SimpleReplyHeader(error, r.Cookie).Write(simple);
            return new Reply([simple], done);
        }

        var chunk = new ErrorChunk(error, NbdStrings.Truncate(message, 1024));
        int length = chunk.EncodedLength;
        var bytes = new byte[StructuredReplyHeader.Size + length];
        new StructuredReplyHeader(NbdReplyFlags.Done, NbdReplyChunkType.Error, r.Cookie, (uint)length).Write(bytes);
        chunk.Write(bytes.AsSpan(StructuredReplyHeader.Size));
        return new Reply([bytes], done);
    }
}
