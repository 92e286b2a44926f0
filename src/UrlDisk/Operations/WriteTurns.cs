namespace UrlDisk.Operations;

/// <summary>
/// Lets copy workers write their chunks in chunk order while their reads overlap (qemu-img convert without
/// <c>-W</c>): a new qcow2 image then holds its clusters in guest order, as qemu-img's does.
/// </summary>
internal sealed class WriteTurns
{
    private readonly Lock _lock = new();
    private readonly Dictionary<long, TaskCompletionSource> _waiting = [];
    private long _next;

    /// <summary>Completes when every chunk before <paramref name="chunk"/> has been written.</summary>
    public Task WaitAsync(long chunk, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (chunk == _next)
            {
                return Task.CompletedTask;
            }

            var turn = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting[chunk] = turn;
            return turn.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Chunk <paramref name="chunk"/> is written: the next one may go.</summary>
    public void Done(long chunk)
    {
        TaskCompletionSource? next;
        lock (_lock)
        {
            _next = chunk + 1;
            _waiting.Remove(_next, out next);
        }

        next?.SetResult();
    }
}
