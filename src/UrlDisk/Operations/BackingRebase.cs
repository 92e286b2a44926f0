using UrlDisk.Formats;
using UrlDisk.Formats.Qcow2;

namespace UrlDisk.Operations;

/// <summary>
/// qemu-img rebase's safe mode, before the header changes: wherever the overlay has no cluster of its own, the
/// old backing chain and the new backing file are compared, and the clusters that differ are written into the
/// overlay with the old chain's bytes, so the overlay reads the same over the new backing file. A compare, not a
/// copy: only differing clusters are written.
/// </summary>
internal static class BackingRebase
{
    private const int Chunk = 1 << 20;

    /// <param name="overlay">Opened writable over its old backing chain.</param>
    /// <param name="newBacking">The new backing image, or null for none (then every non-zero byte below the overlay is copied in).</param>
    public static async Task CopyDifferencesAsync(Qcow2Image overlay, IBlockDevice? newBacking, Action<long>? progress, CancellationToken cancellationToken)
    {
        int cs = overlay.ClusterSize;
        int chunk = Math.Max(Chunk, cs);
        var oldBytes = new byte[chunk];
        var newBytes = new byte[chunk];
        long length = overlay.Length;
        long pos = 0;
        while (pos < length)
        {
            long n = Math.Min(chunk, length - pos);
            var extents = await overlay.GetExtentsAsync(pos, n, cancellationToken).ConfigureAwait(false);
            long next = pos;
            foreach (var e in extents)
            {
                long from = Math.Max(e.Offset, pos);
                long to = Math.Min(e.End, pos + n);
                if (to <= from)
                {
                    continue;
                }

                next = to;
                if (e.Depth > 0)
                {
                    await CompareAndCopyAsync(overlay, newBacking, from, (int)(to - from), e.IsZero, oldBytes, newBytes, cancellationToken).ConfigureAwait(false);
                }
            }

            if (next <= pos)
            {
                throw new UrlDiskException($"{overlay.Info.DisplayName}: no allocation information at offset {pos}");
            }

            pos = next;
            progress?.Invoke(pos);
        }

        await overlay.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task CompareAndCopyAsync(Qcow2Image overlay, IBlockDevice? newBacking, long offset, int length, bool oldIsZero, byte[] oldBytes, byte[] newBytes, CancellationToken cancellationToken)
    {
        var oldPart = oldBytes.AsMemory(0, length);
        var newPart = newBytes.AsMemory(0, length);
        if (oldIsZero)
        {
            oldPart.Span.Clear();
        }
        else
        {
            await overlay.ReadAsync(offset, oldPart, cancellationToken).ConfigureAwait(false);
        }

        await ExtentRuns.ReadFromParentAsync(newBacking, offset, newPart, cancellationToken).ConfigureAwait(false);

        // Runs of differing clusters (cut at cluster boundaries of the overlay) are written together.
        int cs = overlay.ClusterSize;
        int runStart = -1;
        int at = 0;
        while (at <= length)
        {
            bool differs = false;
            int unit = 0;
            if (at < length)
            {
                unit = (int)Math.Min(length - at, cs - ((offset + at) % cs));
                differs = !oldPart.Span.Slice(at, unit).SequenceEqual(newPart.Span.Slice(at, unit));
            }

            if (differs && runStart < 0)
            {
                runStart = at;
            }
            else if (!differs && runStart >= 0)
            {
                var data = oldPart[runStart..at];
                if (data.Span.ContainsAnyExcept((byte)0))
                {
                    await overlay.WriteAsync(offset + runStart, data, WriteOptions.None, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await overlay.WriteZeroesAsync(offset + runStart, data.Length, WriteOptions.None, cancellationToken).ConfigureAwait(false);
                }

                runStart = -1;
            }

            if (at == length)
            {
                break;
            }

            at += unit;
        }
    }
}
