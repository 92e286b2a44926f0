using UrlDisk.Nbd;

namespace UrlDisk.Tests.Nbd;

public class AsyncBudgetTests
{
    [Fact]
    public async Task Waiters_are_served_in_order_when_units_come_back()
    {
        var budget = new AsyncBudget(100);
        await budget.AcquireAsync(60, default);
        var big = budget.AcquireAsync(80, default).AsTask();
        var small = budget.AcquireAsync(10, default).AsTask();

        // The small one fits but must not overtake the big one queued before it.
        await Task.Delay(50);
        Assert.False(big.IsCompleted);
        Assert.False(small.IsCompleted);

        budget.Release(60);
        await big.WaitAsync(TimeSpan.FromSeconds(5));
        await small.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_cancelled_waiter_gives_way()
    {
        var budget = new AsyncBudget(10);
        await budget.AcquireAsync(10, default);
        using var cts = new CancellationTokenSource();
        var cancelled = budget.AcquireAsync(5, cts.Token).AsTask();
        var next = budget.AcquireAsync(5, default).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        budget.Release(5);
        await next.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void More_than_the_capacity_is_refused()
        => Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncBudget(10).AcquireAsync(11, default));
}
