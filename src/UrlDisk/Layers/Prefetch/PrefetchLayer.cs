using Microsoft.Extensions.Logging;

namespace UrlDisk.Layers.Prefetch;

/// <summary>
/// Fetches a recorded working set ahead of the guest: from the moment it opens, a few workers fetch the
/// <see cref="PrefetchPlan"/>'s pieces in order, in parallel, into memory. A guest read inside pieces already fetched
/// is a copy; inside pieces being fetched it waits for that transfer (no second request for the same bytes); any other
/// read goes to the device below at once — the guest never queues behind the prefetch.
/// Pieces are fetched from under the readahead cache when there is one: the plan knows what it needs, and readahead
/// on top would only move more bytes.
/// </summary>
internal sealed class PrefetchLayer : BlockDevice
{
    private readonly IBlockDevice _inner;
    private readonly IBlockDevice _fetchFrom;
    private readonly Segment[] _byOffset;
    private readonly Segment[] _inOrder;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _workers;
    private readonly ILogger _logger;
    private readonly Action<string> _note;
    private int _next;
    private long _bytesFetched, _hits, _waits, _passes;

    public PrefetchLayer(IBlockDevice inner, IReadOnlyList<ProfileRange> plan, int workers, ILogger logger, Action<string> note)
    {
        _inner = inner;
        _fetchFrom = inner is ReadaheadCache { Info.Child: { } below } ? below : inner;
        _logger = logger;
        _note = note;
        _inOrder = [.. plan.Select(r => new Segment(r.Offset, (int)r.Length))];
        _byOffset = [.. _inOrder.OrderBy(s => s.Offset)];
        Info = inner.Info with { Child = inner, Details = new Dictionary<string, object?>(inner.Info.Details) { ["prefetch-bytes"] = plan.Sum(r => r.Length) } };
        // Each worker's first piece is claimed here, before any read can arrive: the format's first reads (at open)
        // then find the start of the plan already in flight and wait for it instead of asking twice.
        _workers = [.. Enumerable.Range(0, Math.Max(1, workers)).Select(_ => Claim()).Where(s => s is not null).Select(s => Task.Run(() => WorkAsync(s!, _stop.Token)))];
    }

    public override long Length => _inner.Length;

    public override BlockDeviceInfo Info { get; }

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var covering = Covering(offset, offset + buffer.Length);
        if (covering is null)
        {
            Interlocked.Increment(ref _passes);
            await _inner.ReadAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        bool waited = false;
        foreach (var s in covering)
        {
            waited |= !s.Done.Task.IsCompleted;
            if (!await s.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false))
            {
                // That fetch failed: the guest asks itself (and sees the error, if it persists).
                Interlocked.Increment(ref _passes);
                await _inner.ReadAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
                return;
            }
        }

        foreach (var s in covering)
        {
            long from = Math.Max(offset, s.Offset), to = Math.Min(offset + buffer.Length, s.Offset + s.Length);
            s.Data.AsSpan((int)(from - s.Offset), (int)(to - from)).CopyTo(buffer.Span[(int)(from - offset)..]);
        }

        Interlocked.Increment(ref waited ? ref _waits : ref _hits);
    }

    public override ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken = default)
        => _inner.PrefetchAsync(offset, length, cancellationToken);

    protected override ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
        => _inner.GetExtentsAsync(offset, length, cancellationToken);

    /// <summary>The pieces that together hold <c>[start, end)</c>, when every one is fetched or being fetched; else null.</summary>
    private Segment[]? Covering(long start, long end)
    {
        List<Segment>? found = null;
        long at = start;
        while (at < end)
        {
            int i = LastStartingAtOrBefore(at);
            if (i < 0 || _byOffset[i].Offset + _byOffset[i].Length <= at || Volatile.Read(ref _byOffset[i].Started) == 0)
            {
                return null;
            }

            (found ??= []).Add(_byOffset[i]);
            at = _byOffset[i].Offset + _byOffset[i].Length;
        }

        return found?.ToArray();
    }

    private int LastStartingAtOrBefore(long offset)
    {
        int lo = 0, hi = _byOffset.Length - 1, best = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_byOffset[mid].Offset <= offset)
            {
                best = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return best;
    }

    /// <summary>Takes the next piece of the plan and marks it in flight (reads of it wait from now on), or null at the end.</summary>
    private Segment? Claim()
    {
        int i = Interlocked.Increment(ref _next) - 1;
        if (i >= _inOrder.Length)
        {
            return null;
        }

        var s = _inOrder[i];
        s.Data = GC.AllocateUninitializedArray<byte>(s.Length);
        Volatile.Write(ref s.Started, 1);
        return s;
    }

    private async Task WorkAsync(Segment first, CancellationToken cancellationToken)
    {
        for (var s = first; s is not null; s = cancellationToken.IsCancellationRequested ? null : Claim())
        {
            try
            {
                await _fetchFrom.ReadAsync(s.Offset, s.Data, cancellationToken).ConfigureAwait(false);
                Interlocked.Add(ref _bytesFetched, s.Length);
                s.Done.TrySetResult(true);
            }
            catch (Exception e)
            {
                s.Data = [];
                s.Done.TrySetResult(false);
                if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
                {
                    return;
                }

                _logger.LogInformation("prefetch of {Offset}+{Length} failed, left to the guest's reads: {Error}", s.Offset, s.Length, e.Message);
            }
        }
    }

    protected override async ValueTask DisposeCoreAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_workers).ConfigureAwait(false);
        foreach (var s in _inOrder)
        {
            s.Done.TrySetResult(false);
        }

        _note($"prefetch: {Interlocked.Read(ref _bytesFetched)} of {_inOrder.Sum(s => (long)s.Length)} bytes fetched in {_inOrder.Length} ranges; "
            + $"guest reads: {_hits} from prefetched data, {_waits} waited for a fetch, {_passes} passed through");
        _stop.Dispose();
        await _inner.DisposeAsync().ConfigureAwait(false);
    }

    private sealed class Segment(long offset, int length)
    {
        public readonly long Offset = offset;
        public readonly int Length = length;
        public readonly TaskCompletionSource<bool> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public byte[] Data = [];
        public int Started;
    }
}
