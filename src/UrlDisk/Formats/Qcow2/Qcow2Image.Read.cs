using System.Buffers;

namespace UrlDisk.Formats.Qcow2;

/// <summary>Reads and allocation status.</summary>
internal sealed partial class Qcow2Image
{
    private readonly Lock _compressedCacheLock = new();
    private (ulong Raw, byte[]? Data) _lastDecompressed;

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        => ReadContentAsync(offset, buffer, locked: false, cancellationToken);

    /// <summary>Reads guest bytes; <paramref name="locked"/> when the caller already holds the metadata lock (copy-on-write).</summary>
    private async ValueTask ReadContentAsync(long offset, Memory<byte> buffer, bool locked, CancellationToken cancellationToken)
    {
        while (buffer.Length > 0)
        {
            var run = locked
                ? await MapAsync(offset, buffer.Length, cancellationToken).ConfigureAwait(false)
                : await MapForIoAsync(offset, buffer.Length, cancellationToken).ConfigureAwait(false);
            int n = (int)run.Length;
            var part = buffer[..n];
            switch (run.Kind)
            {
                case ClusterKind.Normal:
                    await ReadHostAsync(run.HostOffset, part, cancellationToken).ConfigureAwait(false);
                    break;
                case ClusterKind.Zero:
                    part.Span.Clear();
                    break;
                case ClusterKind.Compressed:
                    n = await ReadCompressedRunAsync(offset, run, buffer, locked, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    if (!locked && CopiesOnRead)
                    {
                        await CopyOnReadAsync(offset, part, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        await ReadBelowAsync(offset, part, cancellationToken).ConfigureAwait(false);
                    }

                    break;
            }

            offset += n;
            buffer = buffer[n..];
        }
    }

    /// <summary>Mapping for I/O: on a writable image, metadata changes are serialized with lookups.</summary>
    private async ValueTask<ClusterRun> MapForIoAsync(long offset, long length, CancellationToken cancellationToken)
    {
        if (_writableFile is null)
        {
            return await MapAsync(offset, length, cancellationToken).ConfigureAwait(false);
        }

        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await MapAsync(offset, length, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    /// <summary>Reads host bytes; whatever lies past the end of the file reads as zeros (a sparse tail).</summary>
    private async ValueTask ReadHostAsync(long host, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        long available = Math.Max(0, _file.Length - host);
        int n = (int)Math.Min(buffer.Length, available);
        if (n > 0)
        {
            await _file.ReadAsync(host, buffer[..n], cancellationToken).ConfigureAwait(false);
        }

        buffer.Span[n..].Clear();
    }

    /// <summary>Reads what lies under this image: the backing chain, zeros past its end, or zeros without one.</summary>
    private async ValueTask ReadBelowAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var backing = await GetBackingAsync(cancellationToken).ConfigureAwait(false);
        int n = backing is null ? 0 : (int)Math.Clamp(backing.Length - offset, 0, buffer.Length);
        if (n > 0)
        {
            await backing!.ReadAsync(offset, buffer[..n], cancellationToken).ConfigureAwait(false);
        }

        buffer.Span[n..].Clear();
    }

    private const int MaxCompressedBatch = 8 * 1024 * 1024;

    /// <summary>
    /// Reads a compressed cluster and the compressed clusters that follow it in the buffer when their data is
    /// adjacent in the file (as qemu-img convert -c writes them): one request for many clusters. Returns the bytes filled.
    /// </summary>
    private async ValueTask<int> ReadCompressedRunAsync(long offset, ClusterRun first, Memory<byte> buffer, bool locked, CancellationToken cancellationToken)
    {
        var d0 = CompressedDescriptor.Decode(first.L2Raw, ClusterBits);
        var group = new List<(ulong Raw, int BufferOffset, int Length)> { (first.L2Raw, 0, (int)first.Length) };
        long hostStart = d0.HostOffset, hostEnd = d0.HostOffset + d0.MaxCompressedLength;
        int filled = (int)first.Length;
        while (filled < buffer.Length && hostEnd - hostStart < MaxCompressedBatch)
        {
            var next = locked
                ? await MapAsync(offset + filled, buffer.Length - filled, cancellationToken).ConfigureAwait(false)
                : await MapForIoAsync(offset + filled, buffer.Length - filled, cancellationToken).ConfigureAwait(false);
            if (next.Kind != ClusterKind.Compressed)
            {
                break;
            }

            var d = CompressedDescriptor.Decode(next.L2Raw, ClusterBits);
            if (d.HostOffset < hostStart || d.HostOffset > hostEnd)
            {
                break;
            }

            hostEnd = Math.Max(hostEnd, d.HostOffset + d.MaxCompressedLength);
            group.Add((next.L2Raw, filled, (int)next.Length));
            filled += (int)next.Length;
        }

        if (group.Count == 1)
        {
            var cluster = await DecompressAsync(first.L2Raw, cancellationToken).ConfigureAwait(false);
            cluster.AsSpan((int)(offset & (ClusterSize - 1)), filled).CopyTo(buffer.Span);
            return filled;
        }

        CheckCompressedOffset(d0.HostOffset);
        int total = (int)(Math.Min(hostEnd, _file.Length) - hostStart);
        var bytes = ArrayPool<byte>.Shared.Rent(total);
        byte[]? last = null;
        try
        {
            await _file.ReadAsync(hostStart, bytes.AsMemory(0, total), cancellationToken).ConfigureAwait(false);
            foreach (var (raw, bufferOffset, length) in group)
            {
                var d = CompressedDescriptor.Decode(raw, ClusterBits);
                int start = (int)(d.HostOffset - hostStart);
                if (start >= total)
                {
                    CheckCompressedOffset(_file.Length);
                }

                var compressed = bytes.AsMemory(start, Math.Min(d.MaxCompressedLength, total - start));
                if (length == ClusterSize)
                {
                    // A whole cluster (every one in a bulk copy): straight into the caller's buffer, no array and no copy.
                    DecompressInto(d, compressed, buffer.Span.Slice(bufferOffset, length));
                    last = null;
                }
                else
                {
                    last = Decompress(d, compressed);
                    last.AsSpan((int)((offset + bufferOffset) & (ClusterSize - 1)), length).CopyTo(buffer.Span[bufferOffset..]);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }

        if (last is not null)
        {
            lock (_compressedCacheLock)
            {
                _lastDecompressed = (group[^1].Raw, last);
            }
        }

        return filled;
    }

    private void CheckCompressedOffset(long host)
    {
        if (host >= _file.Length)
        {
            throw new ImageFormatException($"qcow2: compressed cluster at host offset {host} is past the end of the file ({_file.Length} bytes)");
        }
    }

    private byte[] Decompress(CompressedDescriptor d, ReadOnlyMemory<byte> compressed)
    {
        var cluster = new byte[ClusterSize];
        DecompressInto(d, compressed, cluster);
        return cluster;
    }

    private void DecompressInto(CompressedDescriptor d, ReadOnlyMemory<byte> compressed, Span<byte> cluster)
    {
        if (!ClusterCompression.TryDecompress(Header.CompressionType, compressed, cluster))
        {
            throw new ImageFormatException($"qcow2: compressed cluster at host offset {d.HostOffset} ({compressed.Length} bytes, {ClusterCompression.Name(Header.CompressionType)}) does not decompress to a full cluster");
        }
    }

    private async ValueTask<byte[]> DecompressAsync(ulong raw, CancellationToken cancellationToken)
    {
        lock (_compressedCacheLock)
        {
            if (_lastDecompressed.Raw == raw && _lastDecompressed.Data is { } cached)
            {
                return cached;
            }
        }

        var d = CompressedDescriptor.Decode(raw, ClusterBits);
        CheckCompressedOffset(d.HostOffset);
        int length = (int)Math.Min(d.MaxCompressedLength, _file.Length - d.HostOffset);
        var compressed = ArrayPool<byte>.Shared.Rent(length);
        byte[] cluster;
        try
        {
            await _file.ReadAsync(d.HostOffset, compressed.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            cluster = Decompress(d, compressed.AsMemory(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }

        lock (_compressedCacheLock)
        {
            _lastDecompressed = (raw, cluster);
        }

        return cluster;
    }

    /// <summary>NBD CACHE: passes the host ranges behind the guest range (and unallocated parts to the backing file) down.</summary>
    public override async ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, length);
        long end = offset + length;
        while (offset < end)
        {
            var run = await MapForIoAsync(offset, end - offset, cancellationToken).ConfigureAwait(false);
            switch (run.Kind)
            {
                case ClusterKind.Normal:
                    long n = Math.Min(run.Length, Math.Max(0, _file.Length - run.HostOffset));
                    if (n > 0)
                    {
                        await _file.PrefetchAsync(run.HostOffset, n, cancellationToken).ConfigureAwait(false);
                    }

                    break;
                case ClusterKind.Compressed:
                    var d = CompressedDescriptor.Decode(run.L2Raw, ClusterBits);
                    long c = Math.Min(d.MaxCompressedLength, Math.Max(0, _file.Length - d.HostOffset));
                    if (c > 0)
                    {
                        await _file.PrefetchAsync(d.HostOffset, c, cancellationToken).ConfigureAwait(false);
                    }

                    break;
                case ClusterKind.Unallocated:
                    var backing = await GetBackingAsync(cancellationToken).ConfigureAwait(false);
                    long b = backing is null ? 0 : Math.Clamp(backing.Length - offset, 0, run.Length);
                    if (b > 0)
                    {
                        await backing!.PrefetchAsync(offset, b, cancellationToken).ConfigureAwait(false);
                    }

                    break;
            }

            offset += run.Length;
        }
    }

    protected override async ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        var list = new List<Extent>();
        long end = offset + length;
        while (offset < end && list.Count < 100_000)
        {
            var run = await MapForIoAsync(offset, end - offset, cancellationToken).ConfigureAwait(false);
            switch (run.Kind)
            {
                case ClusterKind.Normal:
                    Add(list, new Extent(offset, run.Length, ExtentFlags.Data, 0, run.HostOffset));
                    break;
                case ClusterKind.Compressed:
                    Add(list, new Extent(offset, run.Length, ExtentFlags.Data));
                    break;
                case ClusterKind.Zero:
                    Add(list, new Extent(offset, run.Length, ExtentFlags.Zero));
                    break;
                default:
                    var below = new List<Extent>();
                    await AddBelowAsync(below, offset, run.Length, cancellationToken).ConfigureAwait(false);
                    if (CopiesOnRead)
                    {
                        await StoreZeroExtentsAsync(below, cancellationToken).ConfigureAwait(false);
                    }

                    foreach (var e in below)
                    {
                        Add(list, e);
                    }

                    break;
            }

            offset += run.Length;
        }

        return list;
    }

    private async ValueTask AddBelowAsync(List<Extent> list, long offset, long length, CancellationToken cancellationToken)
        => await ExtentRuns.AddFromParentAsync(list, await GetBackingAsync(cancellationToken).ConfigureAwait(false), offset, length, cancellationToken).ConfigureAwait(false);

    private static void Add(List<Extent> list, Extent e) => ExtentRuns.Add(list, e);
}
