namespace UrlDisk.Operations;

/// <summary>
/// Copies one block device into another with several reads in flight, skipping what reads as zero:
/// holes and zero extents are not read at all, and zero runs inside data are not written when the
/// target is known to be zero already (a new file), otherwise they become write-zeroes.
/// </summary>
internal sealed class ImageCopier
{
    /// <summary>Granularity of zero detection, as qemu-img's default <c>-S 4k</c>.</summary>
    public const int SparseBlock = 4096;

    public int ChunkSize { get; init; } = 4 << 20;

    public int Parallelism { get; init; } = 8;

    /// <summary>The target reads as zeros before the copy (a new sparse file): zero runs need no write.</summary>
    public bool TargetIsZeroed { get; init; }

    /// <summary>Detect zero runs in data (qemu-img convert does, unless -S 0).</summary>
    public bool DetectZeroes { get; init; } = true;

    /// <summary>
    /// Copy only what the source's top layers hold: extents at this depth of its backing chain or deeper are left
    /// as the target has them (commit writes an overlay's own clusters into its base).
    /// </summary>
    public int MaxDepth { get; init; } = int.MaxValue;

    /// <summary>Called with the bytes done so far (every chunk).</summary>
    public Action<long>? Progress { get; init; }

    public async Task CopyAsync(IBlockDevice source, IBlockDevice target, CancellationToken cancellationToken)
    {
        if (target.Length < source.Length)
        {
            throw new UrlDiskException($"the target ({target.Length} bytes) is smaller than the source ({source.Length} bytes)");
        }

        long length = source.Length;
        long chunks = (length + ChunkSize - 1) / ChunkSize;
        long next = -1;
        long done = 0;
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var workers = Enumerable.Range(0, (int)Math.Clamp(chunks, 1, Parallelism)).Select(async _ =>
        {
            var buffer = CopyBuffer.Allocate(ChunkSize);
            try
            {
                long chunk;
                while ((chunk = Interlocked.Increment(ref next)) < chunks)
                {
                    long offset = chunk * ChunkSize;
                    int size = (int)Math.Min(ChunkSize, length - offset);
                    await CopyChunkAsync(source, target, offset, buffer[..size], failed.Token).ConfigureAwait(false);
                    Progress?.Invoke(Interlocked.Add(ref done, size));
                }
            }
            catch
            {
                await failed.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }).ToList();

        try
        {
            await Task.WhenAll(workers).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // One worker failed and cancelled the rest: report its error, not the cancellations.
            var first = workers.Select(w => w.Exception?.InnerException).FirstOrDefault(e => e is not null and not OperationCanceledException);
            if (first is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            }

            throw;
        }

        await target.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task CopyChunkAsync(IBlockDevice source, IBlockDevice target, long offset, Memory<byte> buffer, CancellationToken ct)
    {
        var extents = await source.GetExtentsAsync(offset, buffer.Length, ct).ConfigureAwait(false);
        long pos = offset;
        long end = offset + buffer.Length;
        foreach (var e in extents)
        {
            if (pos >= end)
            {
                break;
            }

            long eEnd = Math.Min(end, e.End);
            if (eEnd <= pos)
            {
                continue;
            }

            if (e.Depth >= MaxDepth)
            {
                // Below the layers being copied: the target keeps its own bytes.
            }
            else if (e.IsZero)
            {
                await ZeroAsync(target, pos, eEnd - pos, ct).ConfigureAwait(false);
            }
            else
            {
                await CopyDataAsync(pos, eEnd).ConfigureAwait(false);
            }

            pos = eEnd;
        }

        if (pos < end && MaxDepth != int.MaxValue)
        {
            // Extents may end early; only the source can say which layer holds the rest.
            if (pos == offset)
            {
                throw new UrlDiskException($"{source.Info.DisplayName}: no allocation information at offset {pos}");
            }

            await CopyChunkAsync(source, target, pos, buffer[(int)(pos - offset)..], ct).ConfigureAwait(false);
            return;
        }

        if (pos < end)
        {
            // Extents may end early; copy the rest as data.
            await CopyDataAsync(pos, end).ConfigureAwait(false);
        }

        async Task CopyDataAsync(long from, long to)
        {
            var slice = buffer.Slice((int)(from - offset), (int)(to - from));
            await source.ReadAsync(from, slice, ct).ConfigureAwait(false);
            await WriteSparseAsync(target, from, slice, ct).ConfigureAwait(false);
        }
    }

    private ValueTask ZeroAsync(IBlockDevice target, long offset, long length, CancellationToken ct)
        => TargetIsZeroed ? ValueTask.CompletedTask : target.WriteZeroesAsync(offset, length, WriteOptions.None, ct);

    private async Task WriteSparseAsync(IBlockDevice target, long offset, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        if (!DetectZeroes)
        {
            await target.WriteAsync(offset, data, WriteOptions.None, ct).ConfigureAwait(false);
            return;
        }

        int pos = 0;
        while (pos < data.Length)
        {
            bool zero = IsZeroBlock(data.Span, offset, pos);
            int runEnd = pos;
            while (runEnd < data.Length && IsZeroBlock(data.Span, offset, runEnd) == zero)
            {
                runEnd += BlockLength(data.Length, offset, runEnd);
            }

            if (zero)
            {
                await ZeroAsync(target, offset + pos, runEnd - pos, ct).ConfigureAwait(false);
            }
            else
            {
                await target.WriteAsync(offset + pos, data[pos..runEnd], WriteOptions.None, ct).ConfigureAwait(false);
            }

            pos = runEnd;
        }
    }

    /// <summary>Length of the sparse block at <paramref name="pos"/>: up to the next device-aligned boundary.</summary>
    private static int BlockLength(int dataLength, long offset, int pos)
        => Math.Min(dataLength - pos, SparseBlock - (int)((offset + pos) % SparseBlock));

    private static bool IsZeroBlock(ReadOnlySpan<byte> data, long offset, int pos)
        => !data.Slice(pos, BlockLength(data.Length, offset, pos)).ContainsAnyExcept((byte)0);
}
