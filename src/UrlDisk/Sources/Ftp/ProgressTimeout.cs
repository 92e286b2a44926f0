namespace UrlDisk.Sources.Ftp;

/// <summary>
/// A cancellation source that fires after <c>timeout</c> without progress: every <see cref="Progress"/> pushes the
/// deadline out again. Linked to the caller's token, so either one stops the operation.
/// </summary>
internal sealed class ProgressTimeout : IDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly TimeSpan _timeout;
    private readonly CancellationToken _caller;

    public ProgressTimeout(TimeSpan timeout, CancellationToken caller)
    {
        _timeout = timeout;
        _caller = caller;
        _cts = CancellationTokenSource.CreateLinkedTokenSource(caller);
        _cts.CancelAfter(timeout);
    }

    public CancellationToken Token => _cts.Token;

    /// <summary>True when the timer, not the caller, cancelled.</summary>
    public bool TimedOut => _cts.IsCancellationRequested && !_caller.IsCancellationRequested;

    public void Progress() => _cts.CancelAfter(_timeout);

    public void Dispose() => _cts.Dispose();
}
