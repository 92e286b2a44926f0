namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// resize --preallocation on qcow2: the guest clusters a resize adds get L2 tables and host clusters, as
/// qemu-img does, without writing data into them (the caller reserves or zeros the host ranges for falloc/full
/// and makes the file long enough to hold them).
/// </summary>
internal sealed partial class Qcow2Image
{
    /// <summary>
    /// Maps every unallocated guest cluster in [<paramref name="from"/>, <paramref name="to"/>) to a new host
    /// cluster (refcount 1, COPIED); a zero flag (or zero subcluster bits) already there stays, so what the
    /// guest reads does not change. Returns the host ranges (offset, length) allocated for data.
    /// </summary>
    internal async ValueTask<IReadOnlyList<(long Offset, long Length)>> PreallocateAsync(long from, long to, CancellationToken cancellationToken)
    {
        var ranges = new List<(long Offset, long Length)>();
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfMarkedCorrupt();
            long perTable = 1L << L2Bits;
            long end = (to + ClusterSize - 1) >> ClusterBits;
            for (long c = from >> ClusterBits; c < end;)
            {
                long l1Index = c >> L2Bits;
                long tableEnd = Math.Min(end, (l1Index + 1) * perTable);
                var (table, tableOffset) = await GetWritableL2Async(l1Index, cancellationToken).ConfigureAwait(false);
                while (c < tableEnd)
                {
                    int index = (int)(c & (perTable - 1));
                    if (!NeedsHostCluster(ReadEntry(table, index)))
                    {
                        c++;
                        continue;
                    }

                    int count = 1;
                    while (c + count < tableEnd && count < Refcounts.MaxRunClusters && NeedsHostCluster(ReadEntry(table, index + count)))
                    {
                        count++;
                    }

                    long host = await Refcounts.AllocateAsync(count, $"{count} preallocated data clusters", cancellationToken).ConfigureAwait(false);
                    await BarrierAsync(cancellationToken).ConfigureAwait(false); // refcounts before the entries
                    for (int i = 0; i < count; i++)
                    {
                        var old = ReadEntry(table, index + i);
                        var entry = L2Entry.Standard(host + ((long)i << ClusterBits), copied: true, zero: !ExtendedL2 && old.HasZeroFlag);
                        SetEntry(table, index + i, entry, ExtendedL2 ? old.Bitmap & 0xFFFF_FFFF_0000_0000UL : 0);
                    }

                    await WriteEntriesAsync(table, tableOffset, index, count, cancellationToken).ConfigureAwait(false);
                    if (!ExtendedL2)
                    {
                        // qemu's copy-on-write of a new cluster's parts outside [from, to): zeros (what they read as).
                        await WriteCowZerosAsync(c, count, host, from, to, cancellationToken).ConfigureAwait(false);
                    }

                    if (ranges.Count > 0 && ranges[^1].Offset + ranges[^1].Length == host)
                    {
                        ranges[^1] = (ranges[^1].Offset, ranges[^1].Length + ((long)count << ClusterBits));
                    }
                    else
                    {
                        ranges.Add((host, (long)count << ClusterBits));
                    }

                    c += count;
                }
            }

            await _writableFile!.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metadataLock.Release();
        }

        return ranges;
    }

    private async ValueTask WriteCowZerosAsync(long first, int count, long host, long from, long to, CancellationToken cancellationToken)
    {
        long cs = ClusterSize;
        if (from > first << ClusterBits && from < (first + 1) << ClusterBits)
        {
            await _writableFile!.WriteAtAsync(host, new byte[from - (first << ClusterBits)], cancellationToken).ConfigureAwait(false);
        }

        long last = first + count - 1;
        if (to > last << ClusterBits && to < (last + 1) << ClusterBits)
        {
            long within = to - (last << ClusterBits);
            await _writableFile!.WriteAtAsync(host + ((long)(count - 1) << ClusterBits) + within, new byte[cs - within], cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Unallocated (no host cluster, not compressed): a cluster preallocation maps.</summary>
    private static bool NeedsHostCluster(L2Entry entry) => !entry.IsCompressed && entry.HostOffset == 0;
}
