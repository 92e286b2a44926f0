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
    /// The image the target has as its backing file (convert <c>-B</c>): what reads the same in it is not written,
    /// and zeros are written only where it is not zero. <see cref="TargetIsZeroed"/> does not apply then.
    /// </summary>
    public IBlockDevice? Base { get; init; }

    /// <summary>Write chunks in order (qemu-img's default; <c>-W</c> lifts it). Reads still overlap.</summary>
    public bool OrderedWrites { get; init; }

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
        var turns = OrderedWrites ? new WriteTurns() : null;
        var workers = Enumerable.Range(0, (int)Math.Clamp(chunks, 1, Parallelism)).Select(async _ =>
        {
            var buffer = CopyBuffer.Allocate(ChunkSize);
            var baseBuffer = Base is null ? Memory<byte>.Empty : GC.AllocateUninitializedArray<byte>(ChunkSize);
            try
            {
                long chunk;
                while ((chunk = Interlocked.Increment(ref next)) < chunks)
                {
                    long offset = chunk * ChunkSize;
                    int size = (int)Math.Min(ChunkSize, length - offset);
                    await CopyChunkAsync(source, target, chunk, buffer[..size], Base is null ? baseBuffer : baseBuffer[..size], turns, failed.Token).ConfigureAwait(false);
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

    private async Task CopyChunkAsync(IBlockDevice source, IBlockDevice target, long chunk, Memory<byte> buffer, Memory<byte> baseBuffer, WriteTurns? turns, CancellationToken ct)
    {
        // Reads first (they overlap between workers), then the writes, in chunk order when asked.
        long offset = chunk * ChunkSize;
        var runs = new List<(int From, int To, bool Zero)>();
        int pos = 0;
        while (pos < buffer.Length)
        {
            var extents = await source.GetExtentsAsync(offset + pos, buffer.Length - pos, ct).ConfigureAwait(false);
            int before = pos;
            foreach (var e in extents)
            {
                int eEnd = (int)Math.Min(buffer.Length, e.End - offset);
                if (pos >= buffer.Length || eEnd <= pos)
                {
                    continue;
                }

                if (e.Depth >= MaxDepth)
                {
                    // Below the layers being copied: the target keeps its own bytes.
                }
                else
                {
                    if (!e.IsZero)
                    {
                        await source.ReadAsync(offset + pos, buffer[pos..eEnd], ct).ConfigureAwait(false);
                    }

                    runs.Add((pos, eEnd, e.IsZero));
                }

                pos = eEnd;
            }

            if (pos == before || MaxDepth == int.MaxValue)
            {
                break;
            }
        }

        if (pos < buffer.Length)
        {
            // Extents may end early. When only some layers are copied, only the source can say which layer holds the rest.
            if (MaxDepth != int.MaxValue)
            {
                throw new UrlDiskException($"{source.Info.DisplayName}: no allocation information at offset {offset + pos}");
            }

            // The rest is data.
            await source.ReadAsync(offset + pos, buffer[pos..], ct).ConfigureAwait(false);
            runs.Add((pos, buffer.Length, false));
        }

        if (Base is not null)
        {
            await ReadBaseAsync(Base, offset, baseBuffer, ct).ConfigureAwait(false);
        }

        if (turns is not null)
        {
            await turns.WaitAsync(chunk, ct).ConfigureAwait(false);
        }

        foreach (var (from, to, zero) in runs)
        {
            await WriteRunAsync(target, offset, buffer, baseBuffer, from, to, zero, ct).ConfigureAwait(false);
        }

        turns?.Done(chunk);
    }

    /// <summary>The base's bytes for the chunk; its zero extents and anything past its end read as zeros.</summary>
    private static async Task ReadBaseAsync(IBlockDevice baseImage, long offset, Memory<byte> buffer, CancellationToken ct)
    {
        buffer.Span.Clear();
        long end = Math.Min(baseImage.Length, offset + buffer.Length);
        if (end <= offset)
        {
            return;
        }

        foreach (var e in await baseImage.GetExtentsAsync(offset, end - offset, ct).ConfigureAwait(false))
        {
            long from = Math.Max(offset, e.Offset);
            long to = Math.Min(end, e.End);
            if (to > from && !e.IsZero)
            {
                await baseImage.ReadAsync(from, buffer[(int)(from - offset)..(int)(to - offset)], ct).ConfigureAwait(false);
            }
        }
    }

    private enum BlockAction
    {
        Skip,
        Zero,
        Data,
    }

    /// <summary>
    /// Writes buffer[from..to) (or zeros, for a zero extent) block by block: blocks that already read right in the
    /// target are skipped (zeros in a zeroed target; with <see cref="Base"/>, what equals the base), zero blocks
    /// become write-zeroes, the rest data. Neighbouring blocks with the same action go as one request.
    /// </summary>
    private async Task WriteRunAsync(IBlockDevice target, long offset, Memory<byte> buffer, Memory<byte> baseBuffer, int from, int to, bool zeroExtent, CancellationToken ct)
    {
        int pos = from;
        while (pos < to)
        {
            var action = Classify(buffer.Span, baseBuffer.Span, offset, pos, to, zeroExtent);
            int runEnd = pos + BlockLength(to, offset, pos);
            while (runEnd < to && Classify(buffer.Span, baseBuffer.Span, offset, runEnd, to, zeroExtent) == action)
            {
                runEnd += BlockLength(to, offset, runEnd);
            }

            switch (action)
            {
                case BlockAction.Zero:
                    await target.WriteZeroesAsync(offset + pos, runEnd - pos, WriteOptions.None, ct).ConfigureAwait(false);
                    break;
                case BlockAction.Data:
                    await target.WriteAsync(offset + pos, buffer[pos..runEnd], WriteOptions.None, ct).ConfigureAwait(false);
                    break;
            }

            pos = runEnd;
        }
    }

    private BlockAction Classify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> baseData, long offset, int pos, int to, bool zeroExtent)
    {
        int n = BlockLength(to, offset, pos);
        var block = data.Slice(pos, n);
        if (Base is not null)
        {
            var under = baseData.Slice(pos, n);
            if (zeroExtent)
            {
                return under.ContainsAnyExcept((byte)0) ? BlockAction.Zero : BlockAction.Skip;
            }

            return block.SequenceEqual(under) ? BlockAction.Skip
                : !block.ContainsAnyExcept((byte)0) ? BlockAction.Zero : BlockAction.Data;
        }

        if (zeroExtent || (DetectZeroes && !block.ContainsAnyExcept((byte)0)))
        {
            return TargetIsZeroed ? BlockAction.Skip : BlockAction.Zero;
        }

        return BlockAction.Data;
    }

    /// <summary>Length of the sparse block at <paramref name="pos"/>: up to the next device-aligned boundary.</summary>
    private static int BlockLength(int dataLength, long offset, int pos)
        => Math.Min(dataLength - pos, SparseBlock - (int)((offset + pos) % SparseBlock));
}
