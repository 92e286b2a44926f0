namespace UrlDisk.Formats.Qcow2;

/// <summary>Reads and allocation status.</summary>
public sealed partial class Qcow2Image
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
                    var cluster = await DecompressAsync(run.L2Raw, cancellationToken).ConfigureAwait(false);
                    cluster.AsSpan((int)(offset & (ClusterSize - 1)), n).CopyTo(part.Span);
                    break;
                default:
                    if (!locked && _context.CopyOnRead && _writableFile is not null)
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
        if (d.HostOffset >= _file.Length)
        {
            throw new ImageFormatException($"qcow2: compressed cluster at host offset {d.HostOffset} is past the end of the file ({_file.Length} bytes)");
        }

        int length = (int)Math.Min(d.MaxCompressedLength, _file.Length - d.HostOffset);
        var compressed = new byte[length];
        await _file.ReadAsync(d.HostOffset, compressed, cancellationToken).ConfigureAwait(false);
        var cluster = new byte[ClusterSize];
        if (!ClusterCompression.TryDecompress(Header.CompressionType, compressed, cluster))
        {
            throw new ImageFormatException($"qcow2: compressed cluster at host offset {d.HostOffset} ({length} bytes, {ClusterCompression.Name(Header.CompressionType)}) does not decompress to a full cluster");
        }

        lock (_compressedCacheLock)
        {
            _lastDecompressed = (raw, cluster);
        }

        return cluster;
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
                    await AddBelowAsync(list, offset, run.Length, cancellationToken).ConfigureAwait(false);
                    break;
            }

            offset += run.Length;
        }

        return list;
    }

    private async ValueTask AddBelowAsync(List<Extent> list, long offset, long length, CancellationToken cancellationToken)
    {
        var backing = await GetBackingAsync(cancellationToken).ConfigureAwait(false);
        long inBacking = backing is null ? 0 : Math.Clamp(backing.Length - offset, 0, length);
        long pos = offset;
        while (pos < offset + inBacking)
        {
            var below = await backing!.GetExtentsAsync(pos, offset + inBacking - pos, cancellationToken).ConfigureAwait(false);
            if (below.Count == 0)
            {
                break;
            }

            foreach (var e in below)
            {
                Add(list, e with { Depth = e.Depth + 1 });
                pos = e.End;
            }
        }

        if (pos < offset + length)
        {
            Add(list, new Extent(pos, offset + length - pos, ExtentFlags.Hole | ExtentFlags.Zero, backing is null ? 0 : 1));
        }
    }

    private static void Add(List<Extent> list, Extent e)
    {
        if (list.Count > 0)
        {
            var last = list[^1];
            bool hostContiguous = last.HostOffset is null ? e.HostOffset is null : e.HostOffset == last.HostOffset + last.Length;
            if (last.End == e.Offset && last.Flags == e.Flags && last.Depth == e.Depth && hostContiguous)
            {
                list[^1] = last with { Length = last.Length + e.Length };
                return;
            }
        }

        list.Add(e);
    }
}
