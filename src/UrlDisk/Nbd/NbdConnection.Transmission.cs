using System.Buffers;
using UrlDisk.Nbd.Wire;
using UrlDisk.Specs;

namespace UrlDisk.Nbd;

/// <summary>
/// The transmission phase: one loop reads requests and hands each to the thread pool; replies go out in the
/// order they complete. In-flight requests and payload bytes are bounded per connection and payload bytes
/// across the server, so a client that sends faster than the device answers is simply not read from until
/// replies drain.
/// </summary>
internal sealed partial class NbdConnection
{
    private SemaphoreSlim? _requestSlots;
    private AsyncBudget? _bytes;
    private int _inFlight;
    private TaskCompletionSource? _drained;

    private async Task TransmitAsync(CancellationToken stop)
    {
        _requestSlots = new SemaphoreSlim(Options.MaxInFlightRequests);
        _bytes = new AsyncBudget(Math.Max(Options.MaxInFlightBytes, NbdServerOptions.MaxPayload));
        _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _inFlight = 1; // the reader's own hold, dropped when it stops reading
        try
        {
            await ReadRequestsAsync(stop).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            if (e is NbdProtocolException)
            {
                Log($"dropped: {e.Message}");
            }
        }
        finally
        {
            // NBD_CMD_DISC, end of stream, garbage or shutdown: finish what is in flight, then close.
            Finish();
            await DrainAsync(stop).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits for the requests in flight. On shutdown the wait is bounded: replies a client does not read
    /// would otherwise keep the server from ever exiting, so after the grace period the connection is cut.
    /// </summary>
    private async Task DrainAsync(CancellationToken stop)
    {
        var drained = _drained!.Task;
        try
        {
            await drained.WaitAsync(stop).ConfigureAwait(false);
            return;
        }
        catch (OperationCanceledException)
        {
        }

        try
        {
            await drained.WaitAsync(Options.ShutdownGrace).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Log($"cut after {Options.ShutdownGrace.TotalSeconds:0.#} s of shutdown with requests still in flight");
            await _dead.CancelAsync().ConfigureAwait(false);
            await _stream.DisposeAsync().ConfigureAwait(false);
            await drained.ConfigureAwait(false);
        }
    }

    private async Task ReadRequestsAsync(CancellationToken stop)
    {
        var headerBytes = new byte[NbdRequest.CompactSize];
        while (true)
        {
            await _requestSlots!.WaitAsync(stop).ConfigureAwait(false);
            bool slotHandedOff = false;
            try
            {
                await ReadExactlyAsync(headerBytes, stop).ConfigureAwait(false);
                NbdRequest.TryRead(headerBytes, extended: false, out var request);
                if (request.Command == NbdCommand.Disconnect)
                {
                    return;
                }

                var (error, message) = Validate(request);
                long payloadLength = request.Command == NbdCommand.Write ? (long)request.Length : 0;
                if (error != NbdError.None)
                {
                    // The client still sends the data of a refused WRITE: consume it to stay in step.
                    await SkipAsync(payloadLength, stop).ConfigureAwait(false);
                    await SendErrorAsync(request, error, message).ConfigureAwait(false);
                    continue;
                }

                long budget = request.Command is NbdCommand.Read or NbdCommand.Write ? (long)request.Length : 0;
                await _bytes!.AcquireAsync(budget, stop).ConfigureAwait(false);
                try
                {
                    await _export.ServerBytes.AcquireAsync(budget, stop).ConfigureAwait(false);
                }
                catch
                {
                    _bytes.Release(budget);
                    throw;
                }

                byte[]? payload = null;
                try
                {
                    if (payloadLength > 0)
                    {
                        payload = ArrayPool<byte>.Shared.Rent((int)payloadLength);
                        await ReadExactlyAsync(payload.AsMemory(0, (int)payloadLength), stop).ConfigureAwait(false);
                    }
                }
                catch
                {
                    if (payload is not null)
                    {
                        ArrayPool<byte>.Shared.Return(payload);
                    }

                    _bytes.Release(budget);
                    _export.ServerBytes.Release(budget);
                    throw;
                }

                Interlocked.Increment(ref _inFlight);
                slotHandedOff = true;
                // Started inline, not through Task.Run: a request answered at once (a cache hit) costs no thread
                // hand-off, which is what a booting guest's thousands of small reads wait on. Anything slower
                // awaits I/O and returns control to this loop at its first await.
                _ = ServeAsync(request, payload, budget);
            }
            finally
            {
                if (!slotHandedOff)
                {
                    _requestSlots.Release();
                }
            }
        }
    }

    private void Finish()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0)
        {
            _drained!.TrySetResult();
        }
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

        if (r.Command == NbdCommand.BlockStatus && !_baseAllocation)
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

    private async Task ServeAsync(NbdRequest request, byte[]? payload, long budget)
    {
        try
        {
            await ExecuteAsync(request, payload).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The reply could not be sent: the peer is gone and the reader will notice.
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

            _bytes!.Release(budget);
            _export.ServerBytes.Release(budget);
            _requestSlots!.Release();
            Finish();
        }
    }

    private async Task ExecuteAsync(NbdRequest r, byte[]? payload)
    {
        var device = _export.Device;
        long offset = (long)r.Offset;
        long length = (long)r.Length;
        var ct = _dead.Token;
        if (r.Command == NbdCommand.Read)
        {
            await ReadAsync(r, ct).ConfigureAwait(false);
            return;
        }

        if (r.Command == NbdCommand.BlockStatus)
        {
            await BlockStatusAsync(r, ct).ConfigureAwait(false);
            return;
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
            await SendErrorAsync(r, NbdErrorMapping.ToNbdError(e), Redact.Spec(e.Message)).ConfigureAwait(false);
            return;
        }

        await SendSimpleReplyAsync(r.Cookie, NbdError.None).ConfigureAwait(false);
    }

    private ValueTask SendSimpleReplyAsync(ulong cookie, NbdError error)
    {
        var bytes = new byte[SimpleReplyHeader.Size];
        new SimpleReplyHeader(error, cookie).Write(bytes);
        return SendAsync(bytes);
    }

    /// <summary>An error chunk when structured replies are on (a READ must never get a simple reply then), else a simple reply.</summary>
    private ValueTask SendErrorAsync(in NbdRequest r, NbdError error, string message)
    {
        if (!_structuredReplies)
        {
            return SendSimpleReplyAsync(r.Cookie, error);
        }

        var chunk = new ErrorChunk(error, NbdStrings.Truncate(message, 1024));
        int length = chunk.EncodedLength;
        var bytes = new byte[StructuredReplyHeader.Size + length];
        new StructuredReplyHeader(NbdReplyFlags.Done, NbdReplyChunkType.Error, r.Cookie, (uint)length).Write(bytes);
        chunk.Write(bytes.AsSpan(StructuredReplyHeader.Size));
        return SendAsync(bytes);
    }
}
