using UrlDisk.Layers.Prefetch;

namespace UrlDisk.Tests.Layers.Prefetch;

public class AccessOrderAndPlanTests
{
    private static ProfileRange R(long offset, long length) => new(offset, length);

    [Fact]
    public void Sequential_reads_merge_and_repeats_keep_their_first_place()
    {
        var reads = new[] { R(100, 10), R(110, 10), R(0, 50), R(105, 5), R(40, 80), R(500, 1) };

        var ranges = AccessOrder.Normalize(reads);

        // 100..120 first; then 0..50; the repeat 105..110 adds nothing; 40..120 adds only 50..100, which
        // follows on from 0..50 and merges with it; 500 last.
        Assert.Equal([R(100, 20), R(0, 100), R(500, 1)], ranges);
    }

    [Fact]
    public void A_read_over_several_known_ranges_adds_only_the_gaps()
    {
        var ranges = AccessOrder.Normalize([R(10, 10), R(30, 10), R(0, 50)]);

        Assert.Equal([R(10, 10), R(30, 10), R(0, 10), R(20, 10), R(40, 10)], ranges);
        Assert.Equal(50, ranges.Sum(r => r.Length));
    }

    [Fact]
    public void Small_gaps_are_fetched_with_their_neighbours_and_large_ones_are_not()
    {
        var plan = PrefetchPlan.Build([R(0, 4096), R(8192, 4096), R(1 << 20, 4096)], maxGap: 64 * 1024);

        Assert.Equal([R(0, 12288), R(1 << 20, 4096)], plan);
    }

    [Fact]
    public void Large_clusters_are_cut_and_pieces_follow_the_first_access()
    {
        const long MiB = 1 << 20;
        // Read late: the start of a 10 MiB run; read first: its end.
        var plan = PrefetchPlan.Build([R(9 * MiB, MiB), R(50 * MiB, 4096), R(0, 9 * MiB)], maxGap: 0, maxSegment: 4 * MiB);

        Assert.Equal([R(8 * MiB, 2 * MiB), R(50 * MiB, 4096), R(0, 4 * MiB), R(4 * MiB, 4 * MiB)], plan);
    }

    [Fact]
    public void Overlapping_ranges_are_fetched_once_and_the_budget_cuts_the_tail()
    {
        var plan = PrefetchPlan.Build([R(0, 100), R(50, 100), R(1000, 100), R(5000, 100)], maxGap: 0, budget: 250);

        Assert.Equal([R(0, 150), R(1000, 100)], plan);
    }
}
