namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Bounded LRU of decoded L2 tables keyed by host offset. Concurrent loads of the same table share one fetch,
/// so a remote image costs one request per table however many readers want it.
/// </summary>
internal sealed class L2TableCache(int capacity)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<long, LinkedListNode<(long Offset, Task<ulong[]> Table)>> _map = [];
    private readonly LinkedList<(long Offset, Task<ulong[]> Table)> _lru = new();

    public int Capacity { get; } = Math.Max(2, capacity);

    public Task<ulong[]> GetAsync(long offset, Func<long, Task<ulong[]>> load)
    {
        Task<ulong[]> task;
        lock (_lock)
        {
            if (_map.TryGetValue(offset, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                return node.Value.Table;
            }

            task = load(offset);
            _map[offset] = _lru.AddFirst((offset, task));
            while (_lru.Count > Capacity)
            {
                var last = _lru.Last!;
                _lru.RemoveLast();
                _map.Remove(last.Value.Offset);
            }
        }

        return AwaitOrForgetAsync(offset, task);
    }

    /// <summary>Puts a table known to match the disk (a freshly written one).</summary>
    public void Put(long offset, ulong[] table)
    {
        lock (_lock)
        {
            if (_map.TryGetValue(offset, out var old))
            {
                _lru.Remove(old);
            }

            _map[offset] = _lru.AddFirst((offset, Task.FromResult(table)));
            while (_lru.Count > Capacity)
            {
                var last = _lru.Last!;
                _lru.RemoveLast();
                _map.Remove(last.Value.Offset);
            }
        }
    }

    public void Remove(long offset)
    {
        lock (_lock)
        {
            if (_map.Remove(offset, out var node))
            {
                _lru.Remove(node);
            }
        }
    }

    private async Task<ulong[]> AwaitOrForgetAsync(long offset, Task<ulong[]> task)
    {
        try
        {
            return await task.ConfigureAwait(false);
        }
        catch
        {
            // A failed fetch must not stay cached: the next reader tries again.
            lock (_lock)
            {
                if (_map.TryGetValue(offset, out var node) && node.Value.Table == task)
                {
                    _map.Remove(offset);
                    _lru.Remove(node);
                }
            }

            throw;
        }
    }
}
