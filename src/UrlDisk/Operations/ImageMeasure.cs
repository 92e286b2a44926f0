using UrlDisk.Formats.Qcow2;

namespace UrlDisk.Operations;

/// <summary>What <c>measure</c> reports: the file size a new image needs now and once fully written.</summary>
/// <param name="Bitmaps">Bytes for persistent bitmaps; null when the source or the target cannot hold them (qemu-img omits the line).</param>
internal sealed record ImageMeasurement(long Required, long FullyAllocated, long? Bitmaps);

/// <summary>
/// qemu-img measure for raw and qcow2 targets: from a size (a new empty image) or from a source image (as if
/// converted: the source's clusters that hold data count, zeros and holes do not).
/// </summary>
internal static class ImageMeasure
{
    /// <summary>Formats whose size can be measured.</summary>
    public static IReadOnlyList<string> Formats { get; } = ["raw", "qcow2"];

    /// <param name="source">The image to measure as if converted, or null for an empty image of <paramref name="size"/>.</param>
    /// <param name="preallocation">off, metadata, falloc or full (falloc and full count every data cluster).</param>
    public static async Task<ImageMeasurement> MeasureAsync(IBlockDevice? source, long size, string format, Qcow2CreateOptions qcow2, string preallocation, bool sourceHasBitmaps, CancellationToken cancellationToken)
    {
        if (format == "raw")
        {
            long bytes = Qcow2Measure.RoundUp(source?.Length ?? size, 512);
            return new ImageMeasurement(bytes, bytes, null);
        }

        qcow2.Validate();
        long cs = qcow2.ClusterSize;
        long virtualSize = Qcow2Measure.RoundUp(source?.Length ?? size, cs);
        long fully = Qcow2Measure.FullyAllocated(virtualSize, cs, qcow2.RefcountBits, qcow2.ExtendedL2);
        long data;
        if (preallocation is "falloc" or "full" || (source is not null && qcow2.BackingFile is not null))
        {
            // As qemu-img: with a backing file nobody knows what the chains share, so every cluster counts.
            data = virtualSize;
        }
        else
        {
            data = source is null ? 0 : await DataClustersAsync(source, cs, cancellationToken).ConfigureAwait(false) * cs;
        }

        long? bitmaps = sourceHasBitmaps && qcow2.Version >= 3 ? 0 : null;
        return new ImageMeasurement(fully - virtualSize + data, fully, bitmaps);
    }

    /// <summary>Clusters of the target that hold any byte the source reports as data (not zero, not a hole).</summary>
    internal static async Task<long> DataClustersAsync(IBlockDevice source, long clusterSize, CancellationToken cancellationToken)
    {
        long clusters = 0;
        long counted = -1; // the last cluster counted
        long pos = 0;
        const long Window = 1L << 30;
        while (pos < source.Length)
        {
            long n = Math.Min(Window, source.Length - pos);
            var extents = await source.GetExtentsAsync(pos, n, cancellationToken).ConfigureAwait(false);
            long end = pos;
            foreach (var e in extents)
            {
                long from = Math.Max(e.Offset, pos);
                long to = Math.Min(e.End, pos + n);
                if (to <= from)
                {
                    continue;
                }

                end = to;
                if (e.IsZero)
                {
                    continue;
                }

                long first = Math.Max(from / clusterSize, counted + 1);
                long last = (to - 1) / clusterSize;
                if (last >= first)
                {
                    clusters += last - first + 1;
                    counted = last;
                }
            }

            if (end <= pos)
            {
                // No extents: count the rest as data, as a source without allocation information is.
                long first = Math.Max(pos / clusterSize, counted + 1);
                long last = (pos + n - 1) / clusterSize;
                clusters += Math.Max(0, last - first + 1);
                counted = Math.Max(counted, last);
                end = pos + n;
            }

            pos = end;
        }

        return clusters;
    }
}
