namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// A view of a source whose extents are widened to whole clusters of a target image: a cluster with any data
/// is reported as data, so a copier writes it whole (as compression needs); clusters of zeros stay zero.
/// </summary>
internal sealed class ClusterAlignedExtents(IBlockDevice inner, int clusterSize) : BlockDevice
{
    public override long Length => inner.Length;

    public override BlockDeviceInfo Info { get; } = inner.Info with { Child = inner };

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        => inner.ReadAsync(offset, buffer, cancellationToken);

    protected override async ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        long cs = clusterSize;
        long start = offset / cs * cs;
        long end = Math.Min(Length, (offset + length + cs - 1) / cs * cs);
        var inner1 = await inner.GetExtentsAsync(start, end - start, cancellationToken).ConfigureAwait(false);
        if (inner1.Count == 0)
        {
            return [];
        }

        long covered = Math.Min(end, inner1[^1].End);
        var dataClusters = new HashSet<long>();
        foreach (var e in inner1)
        {
            if (!e.IsZero)
            {
                for (long c = e.Offset / cs; c * cs < e.End; c++)
                {
                    dataClusters.Add(c);
                }
            }
        }

        var result = new List<Extent>();
        for (long c = start / cs; c * cs < covered; c++)
        {
            long from = Math.Max(offset, c * cs);
            long to = Math.Min(Math.Min(offset + length, covered), (c + 1) * cs);
            if (to <= from)
            {
                continue;
            }

            var flags = dataClusters.Contains(c) ? ExtentFlags.Data : ExtentFlags.Zero;
            if (result.Count > 0 && result[^1].Flags == flags && result[^1].End == from)
            {
                result[^1] = result[^1] with { Length = to - result[^1].Offset };
            }
            else
            {
                result.Add(new Extent(from, to - from, flags));
            }
        }

        return result;
    }
}
