using System.Diagnostics.Metrics;
using UrlDisk.Diagnostics;
using UrlDisk.Sources;

namespace UrlDisk.Tests.Sources;

public class RetryPolicyTests
{
    private static readonly TimeSpan s_tiny = TimeSpan.FromMilliseconds(1);

    private static SourceException Transient(string what = "connection reset") => new(what) { IsTransient = true };

    private static RetryPolicy Fast(int retries, string protocol = "test") => new(retries, protocol, s_tiny, s_tiny);

    [Fact]
    public async Task Transient_failures_within_the_budget_are_retried_until_success()
    {
        int calls = 0;
        int result = await Fast(3).RunAsync(_ => ++calls <= 3 ? throw Transient() : Task.FromResult(42), null, default);
        Assert.Equal(42, result);
        Assert.Equal(4, calls);
    }

    [Fact]
    public async Task Attempts_without_progress_beyond_the_budget_give_up_naming_the_error()
    {
        int calls = 0;
        var e = await Assert.ThrowsAsync<SourceException>(() => Fast(2).RunAsync(_ => { calls++; throw Transient("503 Service Unavailable"); }, () => 0, default));
        Assert.Equal(3, calls);
        Assert.Contains("503 Service Unavailable", e.Message, StringComparison.Ordinal);
        Assert.Contains("gave up after 2 retries", e.Message, StringComparison.Ordinal);
        Assert.True(e.IsTransient);
        Assert.IsType<SourceException>(e.InnerException);
    }

    [Fact]
    public async Task Attempts_that_make_progress_do_not_count()
    {
        // 50 attempts, each a little further than the one before, under a budget of 1.
        long done = 0;
        int calls = 0;
        await Fast(1).RunAsync(_ =>
        {
            calls++;
            done += 10;
            return done < 500 ? throw Transient() : Task.CompletedTask;
        }, () => done, default);
        Assert.Equal(50, calls);
    }

    [Fact]
    public async Task Progress_resets_the_count_but_stalls_after_it_still_end_the_operation()
    {
        // Progress twice, then nothing: the budget of 2 applies to the stalls that follow the progress.
        long done = 0;
        int calls = 0;
        await Assert.ThrowsAsync<SourceException>(() => Fast(2).RunAsync(_ =>
        {
            if (++calls <= 2)
            {
                done += 100;
            }

            throw Transient();
        }, () => done, default));
        Assert.Equal(5, calls);
    }

    [Fact]
    public async Task Zero_retries_means_one_attempt_even_with_progress()
    {
        long done = 0;
        int calls = 0;
        var e = await Assert.ThrowsAsync<SourceException>(() => Fast(0).RunAsync(_ => { calls++; done++; throw Transient("reset"); }, () => done, default));
        Assert.Equal(1, calls);
        Assert.Equal("reset", e.Message);
    }

    [Fact]
    public async Task Errors_that_are_not_transient_are_not_retried()
    {
        int calls = 0;
        await Assert.ThrowsAsync<RemoteFileChangedException>(() => Fast(5).RunAsync(_ => { calls++; throw new RemoteFileChangedException("changed"); }, null, default));
        await Assert.ThrowsAsync<InvalidOperationException>(() => Fast(5).RunAsync(_ => { calls++; throw new InvalidOperationException(); }, null, default));
        Assert.Equal(2, calls);
    }

    [Fact]
    public async Task Cancellation_during_the_backoff_ends_the_wait()
    {
        var policy = new RetryPolicy(5, "test", TimeSpan.FromHours(1), TimeSpan.FromHours(1));
        using var cts = new CancellationTokenSource();
        int calls = 0;
        int progressCalls = 0;
        var run = policy.RunAsync(_ =>
        {
            calls++;
            throw Transient();
        }, () =>
        {
            // Read once before the attempt and once after its failure, just before the backoff: cancel there.
            if (++progressCalls == 2)
            {
                cts.Cancel();
            }

            return 0;
        }, cts.Token);

        // Without cancellation the backoff would be at least half an hour; WaitAsync only guards against a hang.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task The_token_is_passed_to_each_attempt()
    {
        using var cts = new CancellationTokenSource();
        CancellationToken seen = default;
        await Fast(1).RunAsync(ct =>
        {
            seen = ct;
            return Task.CompletedTask;
        }, null, cts.Token);
        Assert.Equal(cts.Token, seen);
    }

    [Fact]
    public void Delay_doubles_from_the_first_delay_up_to_the_cap_with_jitter()
    {
        var policy = new RetryPolicy(5, "test", TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5));
        for (int i = 0; i < 200; i++)
        {
            Assert.InRange(policy.Delay(1).TotalMilliseconds, 50, 100);
            Assert.InRange(policy.Delay(2).TotalMilliseconds, 100, 200);
            Assert.InRange(policy.Delay(4).TotalMilliseconds, 400, 800);
            Assert.InRange(policy.Delay(7).TotalMilliseconds, 2500, 5000);
            Assert.InRange(policy.Delay(100).TotalMilliseconds, 2500, 5000);
        }

        // Jitter: the waits differ.
        Assert.True(Enumerable.Range(0, 20).Select(_ => policy.Delay(3)).Distinct().Count() > 1);
    }

    [Fact]
    public async Task Each_retry_is_counted_in_the_retries_metric_under_the_protocol()
    {
        string protocol = "test-" + Guid.NewGuid().ToString("n");
        long retries = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == UrlDiskMetrics.MeterName && instrument.Name == "urldisk.retries")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "protocol" && Equals(tag.Value, protocol))
                {
                    Interlocked.Add(ref retries, value);
                }
            }
        });
        listener.Start();

        int calls = 0;
        await Fast(5, protocol).RunAsync(_ => ++calls <= 3 ? throw Transient() : Task.CompletedTask, null, default);
        Assert.Equal(3, Interlocked.Read(ref retries));
    }
}
