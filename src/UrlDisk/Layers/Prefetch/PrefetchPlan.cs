namespace UrlDisk.Layers.Prefetch;

/// <summary>
/// What a prefetch fetches, in which order: a profile's ranges merged where they touch or lie at most
/// <see cref="MaxGap"/> apart (one request instead of two costs a few unneeded bytes), cut into pieces of at most
/// <see cref="MaxSegment"/> (so several fetch in parallel and the first bytes arrive early), ordered by the first
/// access of any range in the piece, and cut off at a byte budget. Pure.
/// </summary>
internal static class PrefetchPlan
{
    /// <summary>Gaps up to this size are fetched with their neighbours (a request's round trip costs more).</summary>
    public const long MaxGap = 64 * 1024;

    /// <summary>The largest single request.</summary>
    public const long MaxSegment = 4L << 20;

    /// <summary>The most a prefetch holds in memory; ranges past it (in access order) are left to the guest's reads.</summary>
    public const long DefaultBudget = 256L << 20;

    /// <summary>Disjoint pieces in fetch order; every byte of <paramref name="ranges"/> is in one (up to the budget).</summary>
    public static List<ProfileRange> Build(IReadOnlyList<ProfileRange> ranges, long maxGap = MaxGap, long maxSegment = MaxSegment, long budget = DefaultBudget)
    {
        var byOffset = ranges.Select((r, i) => (Range: r, Order: i)).Where(x => x.Range.Length > 0).OrderBy(x => x.Range.Offset).ToList();
        var pieces = new List<(ProfileRange Piece, int Order)>();
        int k = 0;
        while (k < byOffset.Count)
        {
            // One cluster: ranges that overlap, touch or lie within maxGap of each other.
            int first = k;
            long start = byOffset[k].Range.Offset, end = byOffset[k].Range.End;
            k++;
            while (k < byOffset.Count && byOffset[k].Range.Offset <= end + maxGap)
            {
                end = Math.Max(end, byOffset[k].Range.End);
                k++;
            }

            // Cut it into pieces; each comes when its earliest-read range is due.
            for (long p = start; p < end; p += maxSegment)
            {
                long pEnd = Math.Min(end, p + maxSegment);
                int order = int.MaxValue;
                for (int j = first; j < k && byOffset[j].Range.Offset < pEnd; j++)
                {
                    if (byOffset[j].Range.End > p)
                    {
                        order = Math.Min(order, byOffset[j].Order);
                    }
                }

                pieces.Add((new ProfileRange(p, pEnd - p), order));
            }
        }

        var plan = new List<ProfileRange>();
        long total = 0;
        foreach (var (piece, _) in pieces.OrderBy(x => x.Order).ThenBy(x => x.Piece.Offset))
        {
            if (total + piece.Length > budget)
            {
                break;
            }

            plan.Add(piece);
            total += piece.Length;
        }

        return plan;
    }
}
