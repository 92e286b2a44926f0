namespace UrlDisk.Nbd;

/// <summary>
/// What one connection holds in flight: requests and payload bytes. The connection's reader blocks here (on its own
/// thread) until replies give room back. The byte limit is the connection's share, asked afresh at each request,
/// so it shrinks as other clients arrive; a request larger than the share runs only when nothing else is in flight.
/// Nothing here is shared between connections, so a client that stops reading its replies never holds up another.
/// </summary>
internal sealed class ConnectionBudget(int maxRequests)
{
    private readonly object _lock = new();
    private long _bytes;
    private int _requests;
    private bool _closed;

    /// <summary>Blocks until the request fits; false when the connection was closed meanwhile.</summary>
    public bool Acquire(long amount, Func<long> share)
    {
        lock (_lock)
        {
            while (!_closed && !(_requests < maxRequests && (_bytes == 0 || _bytes + amount <= share())))
            {
                Monitor.Wait(_lock);
            }

            if (_closed)
            {
                return false;
            }

            _bytes += amount;
            _requests++;
            return true;
        }
    }

    public void Release(long amount)
    {
        lock (_lock)
        {
            _bytes -= amount;
            _requests--;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Wakes a waiting reader for good: the connection is ending.</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            Monitor.PulseAll(_lock);
        }
    }
}
