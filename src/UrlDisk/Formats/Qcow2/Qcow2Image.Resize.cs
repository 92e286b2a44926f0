using System.Buffers.Binary;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Changing the virtual size (resize, commit into a smaller base) and unallocating clusters so the backing file
/// shows through again (commit empties an overlay). Writes are ordered as the rest of the write path: new
/// tables and their refcounts are durable before the header points at them, and a pointer is gone before the
/// refcount it held drops.
/// </summary>
internal sealed partial class Qcow2Image
{
    /// <summary>
    /// Sets the virtual size to <paramref name="newSize"/> (a multiple of 512). Growing extends the L1 table when
    /// needed (a new table, the old one freed); a backing file longer than the old size is hidden behind zeros, as
    /// QEMU does, so the new area reads as zeros. Shrinking unallocates every cluster past the new end and frees
    /// the L2 tables no longer needed. Internal snapshots keep their own tables and sizes (clusters they share are
    /// copied before a change, as for any write), as qemu-img resizes such images. Returns the end of the last host cluster still in use (the file may be
    /// truncated there once the image is closed).
    /// </summary>
    internal async ValueTask<long> ResizeAsync(long newSize, CancellationToken cancellationToken)
    {
        if (newSize < 0 || newSize % 512 != 0)
        {
            throw new OptionException($"qcow2: the new size {newSize} must be a multiple of 512 bytes");
        }

        if (newSize >= 1L << 62)
        {
            throw new OptionException($"qcow2: the new size {newSize} is too large; a qcow2 image must be smaller than 2^62 bytes (4E)");
        }

        if (Snapshots.Count > 0 && !IsV3)
        {
            // v2 snapshots do not record their virtual size, so a later apply could not restore it (qemu-img's rule).
            throw new UrlDiskException("Can't resize a v2 image which has snapshots (upgrade it with 'urldisk amend -o compat=1.1' first)");
        }

        var backing = newSize > Length ? await GetBackingAsync(cancellationToken).ConfigureAwait(false) : null;
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfMarkedCorrupt();
            _ = Refcounts;
            long old = Length;
            if (newSize > old)
            {
                long needed = (newSize + L2Coverage - 1) / L2Coverage;
                if (needed * 8 > MaxL1Bytes)
                {
                    throw new OptionException($"qcow2: the new size {newSize} needs an L1 table larger than {MaxL1Bytes / (1024 * 1024)} MiB; the cluster size ({ClusterSize}) is too small for it");
                }

                if (needed > _l1.Length)
                {
                    await GrowL1Async((int)needed, cancellationToken).ConfigureAwait(false);
                }

                await WriteSizeAsync(newSize, cancellationToken).ConfigureAwait(false);
                // The rest of a partial last cluster, and whatever a longer backing file would show, reads as zeros.
                long partialEnd = (old + ClusterSize - 1) & ~((long)ClusterSize - 1);
                long hideUntil = Math.Min(newSize, Math.Max(backing?.Length ?? 0, partialEnd));
                if (hideUntil > old)
                {
                    await ZeroOrDiscardLockedAsync(old, hideUntil - old, discard: false, keepAllocated: false, cancellationToken).ConfigureAwait(false);
                }
            }
            else if (newSize < old)
            {
                long keep = (newSize + ClusterSize - 1) & ~((long)ClusterSize - 1);
                await UnallocateLockedAsync(keep, ((old + ClusterSize - 1) & ~((long)ClusterSize - 1)) - keep, cancellationToken).ConfigureAwait(false);
                await DropL2TablesPastAsync((newSize + L2Coverage - 1) / L2Coverage, cancellationToken).ConfigureAwait(false);
                await WriteSizeAsync(newSize, cancellationToken).ConfigureAwait(false);
            }

            await _writableFile!.FlushAsync(cancellationToken).ConfigureAwait(false);
            return await UsedEndAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    /// <summary>
    /// Makes clusters [offset, offset + length) unallocated (entries cleared, their clusters freed), so reads fall
    /// through to the backing file; <paramref name="offset"/> and <paramref name="length"/> are whole clusters.
    /// </summary>
    internal async ValueTask UnallocateAsync(long offset, long length, CancellationToken cancellationToken)
    {
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfMarkedCorrupt();
            await UnallocateLockedAsync(offset, length, cancellationToken).ConfigureAwait(false);
            await _writableFile!.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    private async ValueTask UnallocateLockedAsync(long offset, long length, CancellationToken cancellationToken)
    {
        long firstCluster = offset >> ClusterBits;
        long endCluster = (offset + length) >> ClusterBits;
        long perTable = 1L << L2Bits;
        for (long c = firstCluster; c < endCluster;)
        {
            long l1Index = c >> L2Bits;
            long tableEnd = Math.Min(endCluster, (l1Index + 1) * perTable);
            if (l1Index >= _l1.Length || new L1Entry(_l1[l1Index]).L2Offset == 0)
            {
                c = tableEnd;
                continue;
            }

            var (table, tableOffset) = await GetWritableL2Async(l1Index, cancellationToken).ConfigureAwait(false);
            var old = new List<L2Entry>();
            int lo = int.MaxValue, hi = -1;
            for (long i = c; i < tableEnd; i++)
            {
                int index = (int)(i & (perTable - 1));
                var entry = ReadEntry(table, index);
                if (entry.Raw != 0 || entry.Bitmap != 0)
                {
                    old.Add(entry);
                    SetEntry(table, index, new L2Entry(0), 0);
                    lo = Math.Min(lo, index);
                    hi = index;
                }
            }

            if (hi >= 0)
            {
                await WriteEntriesAsync(table, tableOffset, lo, hi - lo + 1, cancellationToken).ConfigureAwait(false);
                await ReleaseAsync(old, cancellationToken).ConfigureAwait(false);
            }

            c = tableEnd;
        }
    }

    /// <summary>A new L1 table of <paramref name="entries"/> entries (the old entries, then zeros); the old table is freed.</summary>
    private async ValueTask GrowL1Async(int entries, CancellationToken cancellationToken)
    {
        long bytes = entries * 8L;
        long clusters = (bytes + ClusterSize - 1) / ClusterSize;
        var table = new byte[clusters * ClusterSize];
        for (int i = 0; i < _l1.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(i * 8), _l1[i]);
        }

        long host = await Refcounts.AllocateAsync(clusters, "a new L1 table", cancellationToken).ConfigureAwait(false);
        await _writableFile!.WriteAtAsync(host, table, cancellationToken).ConfigureAwait(false);
        await BarrierAsync(cancellationToken).ConfigureAwait(false); // the table and its refcounts before the header points at it
        var fields = new byte[12];
        BinaryPrimitives.WriteUInt32BigEndian(fields, (uint)entries);
        BinaryPrimitives.WriteUInt64BigEndian(fields.AsSpan(4), (ulong)host);
        await _writableFile.WriteAtAsync(36, fields, cancellationToken).ConfigureAwait(false);
        await BarrierAsync(cancellationToken).ConfigureAwait(false); // the header leaves the old table before its refcounts drop
        long oldOffset = (long)Header.L1TableOffset;
        long oldClusters = (Header.L1Size * 8L + ClusterSize - 1) / ClusterSize;
        var l1 = new ulong[entries];
        _l1.CopyTo(l1, 0);
        _l1 = l1;
        _headerCluster = _headerCluster with { Header = Header with { L1Size = (uint)entries, L1TableOffset = (ulong)host } };
        if (oldOffset != 0 && oldClusters > 0)
        {
            await Refcounts.UpdateAsync(oldOffset >> ClusterBits, oldClusters, -1, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Clears L1 entries from <paramref name="firstUnused"/> on and frees their L2 tables (the table keeps its size).</summary>
    private async ValueTask DropL2TablesPastAsync(long firstUnused, CancellationToken cancellationToken)
    {
        var freed = new List<long>();
        for (long i = firstUnused; i < _l1.Length; i++)
        {
            var e = new L1Entry(_l1[i]);
            if (e.L2Offset == 0)
            {
                continue;
            }

            await _writableFile!.WriteAtAsync((long)Header.L1TableOffset + (i * 8), new byte[8], cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _l1[i], 0);
            freed.Add(e.L2Offset);
        }

        if (freed.Count == 0)
        {
            return;
        }

        await BarrierAsync(cancellationToken).ConfigureAwait(false); // no entry points at the tables before they are freed
        foreach (long table in freed)
        {
            _activeL2Tables!.Remove(table);
            await Refcounts.UpdateAsync(table >> ClusterBits, 1, -1, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask WriteSizeAsync(long size, CancellationToken cancellationToken)
    {
        var field = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(field, (ulong)size);
        await BarrierAsync(cancellationToken).ConfigureAwait(false);
        await _writableFile!.WriteAtAsync(24, field, cancellationToken).ConfigureAwait(false);
        _headerCluster = _headerCluster with { Header = Header with { Size = (ulong)size } };
    }

    /// <summary>The end of the last host cluster whose refcount is not zero.</summary>
    private async ValueTask<long> UsedEndAsync(CancellationToken cancellationToken)
    {
        long cluster = (_writableFile!.Length + ClusterSize - 1) >> ClusterBits;
        while (cluster > 1 && await Refcounts.GetAsync(cluster - 1, cancellationToken).ConfigureAwait(false) == 0)
        {
            cluster--;
        }

        return cluster << ClusterBits;
    }
}
