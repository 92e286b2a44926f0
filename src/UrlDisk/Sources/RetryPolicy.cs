using Microsoft.Extensions.Logging;
using UrlDisk.Diagnostics;

namespace UrlDisk.Sources;

/// <summary>
/// The one retry rule of every source: an operation that fails with a transient <see cref="SourceException"/> is run
/// again after a capped exponential backoff with jitter. Only attempts that made no progress count against
/// <see cref="Retries"/>, so a long transfer over a link that keeps breaking but keeps advancing is never given up on;
/// a failure after progress starts the count (and the backoff) afresh. <c>Retries = 0</c> turns retrying off.
/// </summary>
internal sealed class RetryPolicy
{
    public static readonly TimeSpan DefaultFirstDelay = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan DefaultMaxDelay = TimeSpan.FromSeconds(5);

    private readonly KeyValuePair<string, object?> _tag;
    private readonly ILogger _logger;

    /// <param name="retries">attempts in a row without progress that may fail before the error is final (0 to 100)</param>
    /// <param name="protocol">the tag of the <c>urldisk.retries</c> metric</param>
    /// <param name="logger">where each retry is logged with its cause; null uses the process-wide fallback</param>
    public RetryPolicy(int retries, string protocol, TimeSpan? firstDelay = null, TimeSpan? maxDelay = null, ILogger? logger = null)
    {
        _logger = logger ?? UrlDiskLogging.Create("UrlDisk.Retry");
        ArgumentOutOfRangeException.ThrowIfNegative(retries);
        Retries = retries;
        FirstDelay = firstDelay ?? DefaultFirstDelay;
        MaxDelay = maxDelay ?? DefaultMaxDelay;
        _tag = new("protocol", protocol);
    }

    public int Retries { get; }

    public TimeSpan FirstDelay { get; }

    public TimeSpan MaxDelay { get; }

    /// <summary>
    /// Runs <paramref name="attempt"/> until it succeeds, fails for good (a non-transient error, cancellation), or
    /// fails <see cref="Retries"/> + 1 times in a row without <paramref name="progress"/> moving.
    /// </summary>
    /// <param name="progress">a count that grows when an attempt gets somewhere (bytes done); null when attempts cannot make partial progress</param>
    public async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> attempt, Func<long>? progress, CancellationToken cancellationToken)
    {
        int stalled = 0;
        int retried = 0;
        while (true)
        {
            long before = progress?.Invoke() ?? 0;
            try
            {
                return await attempt(cancellationToken).ConfigureAwait(false);
            }
            catch (SourceException e) when (e.IsTransient && !cancellationToken.IsCancellationRequested)
            {
                stalled = progress is not null && progress() > before ? 0 : stalled + 1;
                if (Retries == 0 || stalled > Retries)
                {
                    if (retried == 0)
                    {
                        throw;
                    }

                    throw new SourceException($"{e.Message} (gave up after {retried} retries; the last {stalled} attempts made no progress)", e) { IsTransient = true };
                }

                retried++;
                UrlDiskMetrics.Retries.Add(1, _tag);
                var delay = Delay(Math.Max(1, stalled));
                _logger.LogInformation("retry {Retry} in {DelayMs} ms after: {Cause}", retried, (int)delay.TotalMilliseconds, e.Message);
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc cref="RunAsync{T}(Func{CancellationToken, Task{T}}, Func{long}?, CancellationToken)"/>
    public Task RunAsync(Func<CancellationToken, Task> attempt, Func<long>? progress, CancellationToken cancellationToken)
        => RunAsync(async ct =>
        {
            await attempt(ct).ConfigureAwait(false);
            return true;
        }, progress, cancellationToken);

    /// <summary>
    /// The wait before the retry that follows <paramref name="failures"/> failures in a row: <see cref="FirstDelay"/>
    /// doubled each time up to <see cref="MaxDelay"/>, then a random half to all of it, so clients that failed together
    /// do not come back together.
    /// </summary>
    public TimeSpan Delay(int failures)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(failures, 1);
        double ceiling = Math.Min(MaxDelay.TotalMilliseconds, FirstDelay.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 1, 30)));
        return TimeSpan.FromMilliseconds(ceiling * (0.5 + (Random.Shared.NextDouble() * 0.5)));
    }
}
