using UrlDisk.Nbd;

namespace UrlDisk.Tests.Nbd;

public class ConnectionBudgetTests
{
    [Fact]
    public void A_request_waits_while_the_share_is_held_and_runs_when_room_comes_back()
    {
        var budget = new ConnectionBudget(maxRequests: 8);
        Assert.True(budget.Acquire(60, () => 100));
        var waiter = Task.Factory.StartNew(() => budget.Acquire(50, () => 100), TaskCreationOptions.LongRunning);
        Assert.False(waiter.Wait(100));
        budget.Release(60);
        Assert.True(waiter.Wait(TimeSpan.FromSeconds(10)));
        Assert.True(waiter.Result);
    }

    [Fact]
    public void A_request_larger_than_the_share_runs_alone()
    {
        var budget = new ConnectionBudget(maxRequests: 8);
        Assert.True(budget.Acquire(500, () => 100));
        budget.Release(500);
        Assert.True(budget.Acquire(10, () => 100));
        var big = Task.Factory.StartNew(() => budget.Acquire(500, () => 100), TaskCreationOptions.LongRunning);
        Assert.False(big.Wait(100));
        budget.Release(10);
        Assert.True(big.Wait(TimeSpan.FromSeconds(10)) && big.Result);
    }

    [Fact]
    public void The_request_count_is_bounded_too_and_close_releases_the_waiter()
    {
        var budget = new ConnectionBudget(maxRequests: 2);
        Assert.True(budget.Acquire(0, () => 100));
        Assert.True(budget.Acquire(0, () => 100));
        var third = Task.Factory.StartNew(() => budget.Acquire(0, () => 100), TaskCreationOptions.LongRunning);
        Assert.False(third.Wait(100));
        budget.Close();
        Assert.True(third.Wait(TimeSpan.FromSeconds(10)));
        Assert.False(third.Result);
    }
}
