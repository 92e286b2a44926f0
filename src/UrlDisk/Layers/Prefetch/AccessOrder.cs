namespace UrlDisk.Layers.Prefetch;

/// <summary>
/// Turns the reads a recording saw (in the order they came) into a profile's ranges: each byte appears once, at its
/// first read, and ranges that follow on from each other are merged. Pure; the recording layer and tests use it.
/// </summary>
internal static class AccessOrder
{
    public static List<ProfileRange> Normalize(IEnumerable<ProfileRange> reads)
    {
        var result = new List<ProfileRange>();
        var covered = new List<ProfileRange>(); // sorted by offset, disjoint, not touching
        foreach (var read in reads)
        {
            if (read.Length <= 0)
            {
                continue;
            }

            // The parts of this read not read before, in offset order.
            long at = read.Offset;
            int i = FirstEndingAfter(covered, read.Offset);
            for (int j = i; j < covered.Count && covered[j].Offset < read.End; j++)
            {
                if (covered[j].Offset > at)
                {
                    Append(result, new ProfileRange(at, covered[j].Offset - at));
                }

                at = Math.Max(at, covered[j].End);
            }

            if (at < read.End)
            {
                Append(result, new ProfileRange(at, read.End - at));
            }

            Cover(covered, i, read);
        }

        return result;
    }

    private static void Append(List<ProfileRange> result, ProfileRange part)
    {
        if (result.Count > 0 && result[^1].End == part.Offset)
        {
            result[^1] = result[^1] with { Length = result[^1].Length + part.Length };
        }
        else
        {
            result.Add(part);
        }
    }

    /// <summary>Index of the first covered range whose end is at or after <paramref name="offset"/> (touching counts).</summary>
    private static int FirstEndingAfter(List<ProfileRange> covered, long offset)
    {
        int lo = 0, hi = covered.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (covered[mid].End < offset)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    /// <summary>Adds <paramref name="read"/> to the covered set, merging it with every range it overlaps or touches.</summary>
    private static void Cover(List<ProfileRange> covered, int first, ProfileRange read)
    {
        long start = read.Offset, end = read.End;
        int last = first;
        while (last < covered.Count && covered[last].Offset <= end)
        {
            start = Math.Min(start, covered[last].Offset);
            end = Math.Max(end, covered[last].End);
            last++;
        }

        covered.RemoveRange(first, last - first);
        covered.Insert(first, new ProfileRange(start, end - start));
    }
}
