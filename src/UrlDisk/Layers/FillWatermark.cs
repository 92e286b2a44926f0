namespace UrlDisk.Layers;

/// <summary>
/// How far a sequential fill has come, and the readers waiting for it to pass a point. Thread-safe.
/// </summary>
internal sealed class FillWatermark
{
    private readonly List<(long Target, TaskCompletionSource Done)> _waiters = [];
    private long _filled;
    private bool _complete;
    private Exception? _failure;

    public long Filled => Volatile.Read(ref _filled);

    /// <summary>Waits until bytes up to <paramref name="end"/> are filled; throws the fill's failure if it failed first.</summary>
    public Task WaitAsync(long end, CancellationToken cancellationToken)
    {
        TaskCompletionSource done;
        lock (_waiters)
        {
            if (_filled >= end)
            {
                return Task.CompletedTask;
            }

            if (_failure is not null)
            {
                return Task.FromException(_failure);
            }

            if (_complete)
            {
                return Task.FromException(new SourceException($"the transfer ended at byte {_filled}, before byte {end}"));
            }

            done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((end, done));
        }

        return cancellationToken.CanBeCanceled ? done.Task.WaitAsync(cancellationToken) : done.Task;
    }

    public void Advance(long filled)
    {
        List<TaskCompletionSource>? ready = null;
        lock (_waiters)
        {
            Volatile.Write(ref _filled, filled);
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Target <= filled)
                {
                    (ready ??= []).Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }
        }

        ready?.ForEach(t => t.TrySetResult());
    }

    /// <summary>The fill ended; readers still waiting asked past the end.</summary>
    public void Complete() => Finish(null);

    public void Fail(Exception failure) => Finish(failure);

    private void Finish(Exception? failure)
    {
        List<(long, TaskCompletionSource)> left;
        lock (_waiters)
        {
            _complete = true;
            _failure = failure;
            left = [.. _waiters];
            _waiters.Clear();
        }

        foreach (var (target, done) in left)
        {
            done.TrySetException(failure ?? new SourceException($"the transfer ended at byte {Filled}, before byte {target}"));
        }
    }
}
