namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Copy-on-read: data read from the backing chain is written into this image as whole clusters (zero flags for
/// zeros), so the next read of it needs nothing from below.
/// </summary>
public sealed partial class Qcow2Image
{
    private const int CopyOnReadChunk = 4 * 1024 * 1024;

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

    private async ValueTask StoreCopiedClustersAsync(long start, byte[] data, CancellationToken cancellationToken)
    {
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            for (long pos = start; pos < start + data.Length && pos < Length; pos += ClusterSize)
            {
                if (_markedCorrupt)
                {
                    return; // reads go on; nothing more is written into a corrupt image
                }

                // Only clusters still wholly unallocated: a guest write may have landed meanwhile.
                var run = await MapAsync(pos, ClusterSize, cancellationToken).ConfigureAwait(false);
                if (run.Kind != ClusterKind.Unallocated || run.Length < Math.Min(ClusterSize, Length - pos))
                {
                    continue;
                }

                var cluster = data.AsMemory((int)(pos - start), (int)Math.Min(ClusterSize, Length - pos));
                if (IsV3 && !cluster.Span.ContainsAnyExcept((byte)0))
                {
                    await ZeroOrDiscardLockedAsync(pos, cluster.Length, discard: false, keepAllocated: false, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await WriteLockedAsync(pos, cluster, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _metadataLock.Release();
        }
    }
}
