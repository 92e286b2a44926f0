namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Copy-on-read: what is learned from the backing chain is kept in this image, so the next read of it needs
/// nothing from below. Data read is written as whole clusters; ranges that read as zeros (zeros read, or holes
/// and zero clusters that block status reports) become zero-flag clusters (v3). An overlay read end to end,
/// by reads or by a sparse-aware client's block status and data reads, is then complete on its own.
/// </summary>
internal sealed partial class Qcow2Image
{
    private const int CopyOnReadChunk = 4 * 1024 * 1024;

    private bool CopiesOnRead => _context.CopyOnRead && _writableFile is not null && _backing is not null;

    private async ValueTask CopyOnReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        long start = offset & ~((long)ClusterSize - 1);
        long end = (offset + buffer.Length + ClusterSize - 1) & ~((long)ClusterSize - 1);
        int chunk = Math.Max(CopyOnReadChunk, ClusterSize);
        for (long pos = start; pos < end; pos += chunk)
        {
            long chunkEnd = Math.Min(end, pos + chunk);
            var data = new byte[chunkEnd - pos];
            await ReadBelowAsync(pos, data, cancellationToken).ConfigureAwait(false);
            await StoreCopiedClustersAsync(pos, data, cancellationToken).ConfigureAwait(false);
            long copyStart = Math.Max(pos, offset);
            long copyEnd = Math.Min(chunkEnd, offset + buffer.Length);
            data.AsSpan((int)(copyStart - pos), (int)(copyEnd - copyStart)).CopyTo(buffer.Span[(int)(copyStart - offset)..]);
        }
    }

    /// <summary>
    /// Writes the clusters of <paramref name="data"/> (read from below, starting at cluster-aligned
    /// <paramref name="start"/>) that are still unallocated: all-zero ones as zero clusters (v3), runs of the
    /// others with one write each (one allocation and one flush per run, not per cluster).
    /// </summary>
    private async ValueTask StoreCopiedClustersAsync(long start, byte[] data, CancellationToken cancellationToken)
    {
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long end = Math.Min(start + data.Length, Length);
            long runStart = -1;
            for (long pos = start; pos < end; pos += ClusterSize)
            {
                var cluster = data.AsMemory((int)(pos - start), (int)Math.Min(ClusterSize, end - pos));
                bool unallocated = await IsWhollyUnallocatedLockedAsync(pos, cancellationToken).ConfigureAwait(false);
                bool zero = unallocated && IsV3 && !cluster.Span.ContainsAnyExcept((byte)0);
                if (runStart >= 0 && !(unallocated && !zero))
                {
                    await WriteLockedAsync(runStart, data.AsMemory((int)(runStart - start), (int)(pos - runStart)), cancellationToken).ConfigureAwait(false);
                    runStart = -1;
                }

                if (zero)
                {
                    await ZeroOrDiscardLockedAsync(pos, cluster.Length, discard: false, keepAllocated: false, cancellationToken).ConfigureAwait(false);
                }
                else if (unallocated && runStart < 0)
                {
                    runStart = pos;
                }
            }

            if (runStart >= 0)
            {
                await WriteLockedAsync(runStart, data.AsMemory((int)(runStart - start), (int)(end - runStart)), cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    /// <summary>
    /// Block status found these extents below unallocated clusters: the whole clusters that read as zeros there
    /// (holes, zero clusters, past the end of a shorter backing file) become zero-flag clusters (v3 only; v2 has
    /// no way to say "zeros" without writing them).
    /// </summary>
    private async ValueTask StoreZeroExtentsAsync(IReadOnlyList<Extent> below, CancellationToken cancellationToken)
    {
        if (!IsV3)
        {
            return;
        }

        for (int i = 0; i < below.Count; i++)
        {
            if ((below[i].Flags & ExtentFlags.Zero) == 0)
            {
                continue;
            }

            long zeroStart = below[i].Offset, zeroEnd = below[i].End;
            while (i + 1 < below.Count && (below[i + 1].Flags & ExtentFlags.Zero) != 0 && below[i + 1].Offset == zeroEnd)
            {
                zeroEnd = below[++i].End;
            }

            long first = (zeroStart + ClusterSize - 1) & ~((long)ClusterSize - 1);
            long end = zeroEnd >= Length ? Length : zeroEnd & ~((long)ClusterSize - 1);
            if (first < end)
            {
                await StoreZeroClustersAsync(first, end, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async ValueTask StoreZeroClustersAsync(long start, long end, CancellationToken cancellationToken)
    {
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            for (long pos = start; pos < end; pos += ClusterSize)
            {
                if (await IsWhollyUnallocatedLockedAsync(pos, cancellationToken).ConfigureAwait(false))
                {
                    await ZeroOrDiscardLockedAsync(pos, Math.Min(ClusterSize, Length - pos), discard: false, keepAllocated: false, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    /// <summary>
    /// Whether the cluster at <paramref name="pos"/> is still wholly unallocated (a guest write may have landed
    /// since the backing file was read) and the image still takes writes (nothing is added to a corrupt image).
    /// </summary>
    private async ValueTask<bool> IsWhollyUnallocatedLockedAsync(long pos, CancellationToken cancellationToken)
    {
        if (_markedCorrupt)
        {
            return false;
        }

        var run = await MapAsync(pos, ClusterSize, cancellationToken).ConfigureAwait(false);
        return run.Kind == ClusterKind.Unallocated && run.Length >= Math.Min(ClusterSize, Length - pos);
    }
}
