using System.Buffers;
using UrlDisk.Diagnostics;

namespace UrlDisk.Layers;

/// <summary>
/// A bounded block cache with readahead over a slow source.
/// A miss fetches the missing blocks plus <c>readahead</c> bytes in one request; reads that fall on blocks
/// already being fetched wait for that transfer instead of asking again; least recently used blocks are
/// dropped past <c>cache-size</c>, so memory stays bounded whatever the image size.
/// Large reads (bulk copies) bypass the cache: caching them would only evict useful blocks.
/// </summary>
internal sealed class ReadaheadCache : BlockDevice
{
    public const int BlockSize = 64 * 1024;

    /// <summary>Reads at least this large (or the readahead, if larger) bypass the cache.</summary>
    public const int BypassMinimum = 256 * 1024;

    private readonly IBlockDevice _inner;
    private readonly long _readaheadBlocks;
    private readonly int _maxBlocks;
    private readonly int _bypassThreshold;
    private readonly Lock _lock = new();
    private readonly Dictionary<long, Entry> _blocks = [];
    private readonly LinkedList<long> _lru = new();
    private readonly CancellationTokenSource _disposing = new();
    private readonly KeyValuePair<string, object?> _tag;

    public ReadaheadCache(IBlockDevice inner, long readahead, long cacheSize)
    {
        _inner = inner;
        _readaheadBlocks = (readahead + BlockSize - 1) / BlockSize;
        _maxBlocks = (int)Math.Clamp(cacheSize / BlockSize, 4, int.MaxValue);
        // A read as large as the readahead gains nothing from it, and caching a bulk reader's blocks only churns memory
        // (nbdcopy's 256 KiB reads through a 32 MiB cache grew serve to ~300 MiB): such reads go straight through.
        _bypassThreshold = (int)Math.Clamp(readahead, BypassMinimum, 16 << 20);
        var details = new Dictionary<string, object?>(inner.Info.Details) { ["readahead"] = readahead, ["cache-size"] = (long)_maxBlocks * BlockSize };
        Info = inner.Info with { Child = inner, Details = details };
        _tag = new("protocol", inner.Info.Driver);
    }

    public override long Length => _inner.Length;

    public override BlockDeviceInfo Info { get; }

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        long first = offset / BlockSize;
        long last = (offset + buffer.Length - 1) / BlockSize;
        if (buffer.Length >= _bypassThreshold && !AllPresent(first, last))
        {
            UrlDiskMetrics.CacheMisses.Add(1, _tag);
            await _inner.ReadAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
            UrlDiskMetrics.BytesRead.Add(buffer.Length, _tag);
            return;
        }

        // A large read of blocks already here (prefetched) uses them but starts no readahead window: a bulk reader
        // that happened to begin on cached blocks would otherwise drag every later read through the cache.
        var needed = Acquire(first, last, withReadahead: buffer.Length < _bypassThreshold);
        for (int i = 0; i < needed.Length; i++)
        {
            long block = first + i;
            byte[] data = await needed[i].Data.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            long blockStart = block * BlockSize;
            int from = (int)Math.Max(0, offset - blockStart);
            int to = (int)Math.Min(data.Length, offset + buffer.Length - blockStart);
            data.AsSpan(from, to - from).CopyTo(buffer.Span[(int)(blockStart + from - offset)..]);
        }

        UrlDiskMetrics.BytesRead.Add(buffer.Length, _tag);
    }

    public override async ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, length);
        if (length == 0)
        {
            return;
        }

        // Never ask for more than the cache can hold: the first blocks would be evicted before use.
        length = Math.Min(length, (long)(_maxBlocks / 2) * BlockSize);
        long first = offset / BlockSize;
        long last = (offset + length - 1) / BlockSize;
        foreach (var e in Acquire(first, last, withReadahead: false))
        {
            await e.Data.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>True when every block of the range is cached or being fetched (a prefetch did it): then even a large read uses them.</summary>
    private bool AllPresent(long first, long last)
    {
        lock (_lock)
        {
            for (long b = first; b <= last; b++)
            {
                if (!_blocks.ContainsKey(b))
                {
                    return false;
                }
            }

            return true;
        }
    }

    /// <summary>Returns the entries for blocks <paramref name="first"/>..<paramref name="last"/>, starting fetches for the missing ones.</summary>
    private Entry[] Acquire(long first, long last, bool withReadahead)
    {
        var needed = new Entry[last - first + 1];
        var fetches = new List<(long Start, Entry[] Entries)>();
        bool missed = false, joined = false;
        lock (_lock)
        {
            long lastBlockOfDevice = (Length - 1) / BlockSize;
            long b = first;
            while (b <= last)
            {
                if (_blocks.TryGetValue(b, out var existing))
                {
                    needed[b - first] = existing;
                    if (withReadahead && existing.NextWindow >= 0)
                    {
                        // A reader reached blocks that were read ahead: fetch the next window now, before it is needed.
                        long next = existing.NextWindow;
                        existing.NextWindow = -1;
                        StartWindow(next, lastBlockOfDevice, fetches);
                    }

                    if (existing.Node is { } node)
                    {
                        _lru.Remove(node);
                        _lru.AddLast(node);
                    }
                    else
                    {
                        joined = true;
                    }

                    b++;
                    continue;
                }

                missed = true;
                long runStart = b;
                var run = new List<Entry>();
                b = ClaimMissing(b, last, run);
                run.CopyTo(needed, (int)(runStart - first));
                if (b > last && withReadahead)
                {
                    int firstAhead = run.Count;
                    b = ClaimMissing(b, Math.Min(lastBlockOfDevice, last + _readaheadBlocks), run);
                    if (run.Count > firstAhead)
                    {
                        run[firstAhead].NextWindow = b;
                    }
                }

                fetches.Add((runStart, run.ToArray()));
            }
        }

        var counter = missed ? UrlDiskMetrics.CacheMisses : joined ? UrlDiskMetrics.CacheJoins : UrlDiskMetrics.CacheHits;
        counter.Add(1, _tag);
        foreach (var (start, entries) in fetches)
        {
            _ = FetchAsync(start, entries);
        }

        return needed;
    }

    /// <summary>
    /// Queues a fetch of up to two readahead lengths of missing blocks from <paramref name="start"/> (caller holds the lock).
    /// Its first block carries the marker for the window after it, so a sequential reader never waits on the network.
    /// </summary>
    private void StartWindow(long start, long lastBlockOfDevice, List<(long Start, Entry[] Entries)> fetches)
    {
        // Two readahead lengths: as much as a miss asks for (request + readahead), so a stream read this way
        // makes no more requests than one read by misses, and never waits.
        var run = new List<Entry>();
        long end = ClaimMissing(start, Math.Min(lastBlockOfDevice, start + (2 * _readaheadBlocks) - 1), run);
        if (run.Count > 0)
        {
            run[0].NextWindow = end;
            fetches.Add((start, run.ToArray()));
        }
    }

    /// <summary>Adds entries for the blocks from <paramref name="block"/> up to <paramref name="limit"/> until one is present (caller holds the lock); returns the block after the last added.</summary>
    private long ClaimMissing(long block, long limit, List<Entry> run)
    {
        while (block <= limit && !_blocks.ContainsKey(block))
        {
            var e = new Entry();
            _blocks[block] = e;
            run.Add(e);
            block++;
        }

        return block;
    }

    private async Task FetchAsync(long firstBlock, Entry[] entries)
    {
        long offset = firstBlock * BlockSize;
        int length = (int)Math.Min((long)entries.Length * BlockSize, Length - offset);
        byte[] rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            await _inner.ReadAsync(offset, rented.AsMemory(0, length), _disposing.Token).ConfigureAwait(false);
            var blocks = new byte[entries.Length][];
            for (int i = 0; i < entries.Length; i++)
            {
                int start = i * BlockSize;
                blocks[i] = rented.AsSpan(start, Math.Min(BlockSize, length - start)).ToArray();
            }

            lock (_lock)
            {
                for (int i = 0; i < entries.Length; i++)
                {
                    if (_blocks.TryGetValue(firstBlock + i, out var current) && ReferenceEquals(current, entries[i]))
                    {
                        entries[i].Node = _lru.AddLast(firstBlock + i);
                    }
                }

                while (_lru.Count > _maxBlocks)
                {
                    long victim = _lru.First!.Value;
                    _lru.RemoveFirst();
                    _blocks.Remove(victim);
                }
            }

            for (int i = 0; i < entries.Length; i++)
            {
                entries[i].Data.TrySetResult(blocks[i]);
            }
        }
        catch (Exception e)
        {
            // Forget the failed blocks so the next read asks again; waiters get the error.
            lock (_lock)
            {
                for (int i = 0; i < entries.Length; i++)
                {
                    if (_blocks.TryGetValue(firstBlock + i, out var current) && ReferenceEquals(current, entries[i]))
                    {
                        _blocks.Remove(firstBlock + i);
                    }
                }
            }

            foreach (var entry in entries)
            {
                entry.Data.TrySetException(e);
                _ = entry.Data.Task.Exception; // readahead-only blocks may have no waiter
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    protected override ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
        => _inner.GetExtentsAsync(offset, length, cancellationToken);

    protected override async ValueTask DisposeCoreAsync()
    {
        await _disposing.CancelAsync().ConfigureAwait(false);
        await _inner.DisposeAsync().ConfigureAwait(false);
        _disposing.Dispose();
    }

    private sealed class Entry
    {
        public readonly TaskCompletionSource<byte[]> Data = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public LinkedListNode<long>? Node;

        /// <summary>When a reader touches this block, fetch the window starting here (-1: no marker).</summary>
        public long NextWindow = -1;
    }
}
