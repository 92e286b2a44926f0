namespace UrlDisk.Nbd;

/// <summary>
/// A first-come first-served allowance of units (bytes in flight). Waiters are served in order, so a large
/// request is not starved by a stream of small ones.
/// </summary>
internal sealed class AsyncBudget(long capacity)
{
    private readonly Lock _lock = new();
    private readonly Queue<(long Amount, TaskCompletionSource Waiter)> _waiters = new();
    private long _available = capacity;

    public long Capacity { get; } = capacity;

    public ValueTask AcquireAsync(long amount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(amount, Capacity);
        TaskCompletionSource waiter;
        lock (_lock)
        {
            if (_waiters.Count == 0 && _available >= amount)
            {
                _available -= amount;
                return ValueTask.CompletedTask;
            }

            waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Enqueue((amount, waiter));
        }

        return WaitAsync(amount, waiter, cancellationToken);
    }

    private async ValueTask WaitAsync(long amount, TaskCompletionSource waiter, CancellationToken cancellationToken)
    {
        try
        {
            await waiter.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // If the grant raced with the cancellation, give the units back.
            lock (_lock)
            {
                if (!waiter.TrySetCanceled())
                {
                    _available += amount;
                }
            }

            Wake();
            throw;
        }
    }

    public void Release(long amount)
    {
        lock (_lock)
        {
            _available += amount;
        }

        Wake();
    }

    private void Wake()
    {
        lock (_lock)
        {
            while (_waiters.TryPeek(out var head))
            {
                if (head.Waiter.Task.IsCompleted)
                {
                    _waiters.Dequeue();
                    continue;
                }

                if (_available < head.Amount)
                {
                    break;
                }

                _waiters.Dequeue();
                _available -= head.Amount;
                head.Waiter.TrySetResult();
            }
        }
    }
}
