using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;

namespace UrlDisk.Formats.Vmdk;

/// <summary>
/// A hosted sparse extent (monolithicSparse, streamOptimized, the twoGbMaxExtentSparse pieces): grain directory →
/// grain table → grain, uncompressed or zlib-compressed behind a grain marker. The directory is read at open
/// (its size is bounded by the file's); grain tables are cached, a bounded number of them.
/// </summary>
internal sealed class SparseExtent : VmdkExtent
{
    private const int MaxCachedTables = 4096;
    private const int MaxGrainsPerMap = 1 << 16;

    /// <summary>Grain directory entries allowed (QEMU's limit for the L1 table): 128 MiB of directory, whatever the file claims.</summary>
    private const long MaxGdEntries = 32L << 20;

    private readonly IBlockDevice _file;
    private readonly uint[] _gd;
    private readonly long _length;
    private readonly string _name;
    private readonly Dictionary<uint, uint[]> _tables = [];
    private readonly Lock _tablesLock = new();
    private readonly Lock _grainLock = new();
    private (long Grain, byte[]? Data) _lastGrain = (-1, null);

    private SparseExtent(IBlockDevice file, VmdkSparseHeader header, uint[] gd, long length, string name)
    {
        _file = file;
        Header = header;
        _gd = gd;
        _length = length;
        _name = name;
    }

    public VmdkSparseHeader Header { get; }

    public override long Length => _length;

    public override IBlockDevice File => _file;

    internal long GrainBytes => Header.GrainBytes;

    /// <summary>The grain directory as read: the sector of each grain table, 0 when absent.</summary>
    internal ReadOnlySpan<uint> GrainDirectory => _gd;

    /// <summary>
    /// Reads the header (and, for a streamOptimized file whose header says GD_AT_END, the footer) and the grain
    /// directory. <paramref name="length"/> is the extent's length in the descriptor (null: the header's capacity).
    /// </summary>
    public static async ValueTask<SparseExtent> OpenAsync(IBlockDevice file, string name, long? length, CancellationToken cancellationToken)
    {
        var buffer = new byte[VmdkSparseHeader.Size];
        if (file.Length < VmdkSparseHeader.Size)
        {
            throw new ImageFormatException($"vmdk: sparse extent '{name}' is {file.Length} bytes, shorter than its 512-byte header");
        }

        await file.ReadAsync(0, buffer, cancellationToken).ConfigureAwait(false);
        if (!VmdkSparseHeader.TryRead(buffer, out var header, out string? error))
        {
            throw new ImageFormatException($"vmdk: '{name}' at offset 0: {error}");
        }

        if (header.GdOffset == VmdkSparseHeader.GdAtEnd)
        {
            header = await ReadFooterAsync(file, name, cancellationToken).ConfigureAwait(false);
        }

        long extentLength = length ?? header.CapacityBytes;
        if (extentLength > header.CapacityBytes)
        {
            throw new ImageFormatException($"vmdk: extent '{name}' is {extentLength} bytes in the descriptor, more than its header's capacity ({header.CapacityBytes} bytes)");
        }

        long entries = header.GdEntries;
        if (entries > MaxGdEntries)
        {
            throw new ImageFormatException($"vmdk: '{name}': the grain directory would have {entries} entries, more than the {MaxGdEntries} allowed (capacity {header.Capacity} sectors, grain {header.GrainSize} sectors, {header.NumGtesPerGt} entries per table)");
        }

        long gdStart = (long)Math.Min(header.GdOffset, (ulong)long.MaxValue / 1024) * 512;
        if (entries > (file.Length - Math.Min(gdStart, file.Length)) / 4)
        {
            throw new ImageFormatException($"vmdk: '{name}': the grain directory at sector {header.GdOffset} ({entries} entries) does not fit in the file ({file.Length} bytes)");
        }

        var gdBytes = new byte[entries * 4];
        if (gdBytes.Length > 0)
        {
            await file.ReadAsync(gdStart, gdBytes, cancellationToken).ConfigureAwait(false);
        }

        var gd = new uint[entries];
        for (int i = 0; i < gd.Length; i++)
        {
            gd[i] = BinaryPrimitives.ReadUInt32LittleEndian(gdBytes.AsSpan(i * 4));
        }

        return new SparseExtent(file, header, gd, extentLength, name);
    }

    /// <summary>The last three sectors of a streamOptimized file: footer marker, footer (a header with the real gdOffset), end-of-stream marker.</summary>
    private static async ValueTask<VmdkSparseHeader> ReadFooterAsync(IBlockDevice file, string name, CancellationToken cancellationToken)
    {
        long at = (file.Length & ~511L) - 1536;
        if (at < VmdkSparseHeader.Size)
        {
            throw new ImageFormatException($"vmdk: '{name}': the header says the grain directory is at the end, but the file ({file.Length} bytes) has no room for a footer");
        }

        var tail = new byte[1536];
        await file.ReadAsync(at, tail, cancellationToken).ConfigureAwait(false);
        var marker = tail.AsSpan(0, 512);
        if (BinaryPrimitives.ReadUInt32LittleEndian(marker[8..]) != 0 || BinaryPrimitives.ReadUInt32LittleEndian(marker[12..]) != VmdkMarker.TypeFooter)
        {
            throw new ImageFormatException($"vmdk: '{name}' at offset {at}: expected the footer marker (streamOptimized with the grain directory at the end)");
        }

        if (!VmdkSparseHeader.TryRead(tail.AsSpan(512, 512), out var footer, out string? error))
        {
            throw new ImageFormatException($"vmdk: '{name}' at offset {at + 512}: footer: {error}");
        }

        if (tail.AsSpan(1024, 512).ContainsAnyExcept((byte)0))
        {
            throw new ImageFormatException($"vmdk: '{name}' at offset {at + 1024}: expected the end-of-stream marker after the footer");
        }

        if (footer.GdOffset == VmdkSparseHeader.GdAtEnd)
        {
            throw new ImageFormatException($"vmdk: '{name}' at offset {at + 512}: the footer, too, says the grain directory is at the end");
        }

        return footer;
    }

    public override async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (buffer.Length > 0)
        {
            var (kind, host, length) = await MapRunAsync(offset, buffer.Length, cancellationToken).ConfigureAwait(false);
            int n = (int)length;
            switch (kind)
            {
                case GrainKind.Data:
                    await _file.ReadAsync(host, buffer[..n], cancellationToken).ConfigureAwait(false);
                    break;
                case GrainKind.Compressed:
                    var grain = await GetCompressedGrainAsync(offset / GrainBytes, host, cancellationToken).ConfigureAwait(false);
                    grain.AsSpan((int)(offset % GrainBytes), n).CopyTo(buffer.Span);
                    break;
                default:
                    buffer.Span[..n].Clear();
                    break;
            }

            offset += n;
            buffer = buffer[n..];
        }
    }

    public override async ValueTask<IReadOnlyList<Extent>> MapAsync(long offset, long length, CancellationToken cancellationToken)
    {
        var list = new List<Extent>();
        long end = offset + length;
        int grains = 0;
        while (offset < end && grains < MaxGrainsPerMap)
        {
            var (kind, host, n) = await MapRunAsync(offset, end - offset, cancellationToken).ConfigureAwait(false);
            var e = kind switch
            {
                GrainKind.Data => new Extent(offset, n, ExtentFlags.Data, 0, host),
                GrainKind.Compressed => new Extent(offset, n, ExtentFlags.Data),
                GrainKind.Zero => new Extent(offset, n, ExtentFlags.Zero),
                _ => new Extent(offset, n, ExtentFlags.Hole | ExtentFlags.Zero),
            };
            ExtentRuns.Add(list, e);
            offset += n;
            grains += (int)Math.Max(1, n / GrainBytes);
        }

        return list;
    }

    /// <summary>
    /// The run starting at <paramref name="offset"/>: one compressed grain, or consecutive grains of the same kind
    /// (data grains only while contiguous in the file), up to <paramref name="max"/> bytes and the grain table's end.
    /// </summary>
    private async ValueTask<(GrainKind Kind, long Host, long Length)> MapRunAsync(long offset, long max, CancellationToken cancellationToken)
    {
        long grain = offset / GrainBytes;
        long within = offset % GrainBytes;
        var (kind, host) = await MapGrainAsync(grain, cancellationToken).ConfigureAwait(false);
        long length = Math.Min(max, GrainBytes - within);
        if (kind == GrainKind.Compressed)
        {
            return (kind, host, length);
        }

        long tableEnd = ((grain / Header.NumGtesPerGt) + 1) * Header.NumGtesPerGt;
        long next = grain + 1;
        while (length < max && next < tableEnd && next * GrainBytes < _length)
        {
            var (k, h) = await MapGrainAsync(next, cancellationToken).ConfigureAwait(false);
            if (k != kind || (kind == GrainKind.Data && h != host + (next * GrainBytes) - grain * GrainBytes))
            {
                break;
            }

            length = Math.Min(max, length + GrainBytes);
            next++;
        }

        return (kind, kind == GrainKind.Data ? host + within : host, length);
    }

    private async ValueTask<(GrainKind Kind, long Host)> MapGrainAsync(long grain, CancellationToken cancellationToken)
    {
        long gdIndex = grain / Header.NumGtesPerGt;
        if (gdIndex >= _gd.Length)
        {
            throw new ImageFormatException($"vmdk: '{_name}': grain {grain} is beyond the grain directory ({_gd.Length} entries)");
        }

        uint gtSector = _gd[gdIndex];
        if (gtSector == 0)
        {
            return (GrainKind.Unallocated, 0);
        }

        var table = await GetTableAsync(gdIndex, gtSector, cancellationToken).ConfigureAwait(false);
        uint gte = table[grain % Header.NumGtesPerGt];
        if (gte == 0)
        {
            return (GrainKind.Unallocated, 0);
        }

        if (gte == 1 && Header.HasZeroedGrainGte)
        {
            return (GrainKind.Zero, 0);
        }

        long host = gte * 512L;
        long needed = Header.IsCompressed ? VmdkMarker.GrainMarkerHeader : Math.Min(GrainBytes, _length - (grain * GrainBytes));
        if (host > _file.Length - needed)
        {
            throw new ImageFormatException($"vmdk: '{_name}': grain table at sector {gtSector}, entry {grain % Header.NumGtesPerGt}: grain at sector {gte} is past the end of the file ({_file.Length} bytes)");
        }

        return (Header.IsCompressed ? GrainKind.Compressed : GrainKind.Data, host);
    }

    private async ValueTask<uint[]> GetTableAsync(long gdIndex, uint gtSector, CancellationToken cancellationToken)
    {
        lock (_tablesLock)
        {
            if (_tables.TryGetValue(gtSector, out var cached))
            {
                return cached;
            }
        }

        int bytes = (int)Header.NumGtesPerGt * 4;
        long at = gtSector * 512L;
        if (at > _file.Length - bytes)
        {
            throw new ImageFormatException($"vmdk: '{_name}': grain directory entry {gdIndex} (at offset {((long)Header.GdOffset * 512) + (gdIndex * 4)}): grain table at sector {gtSector} is past the end of the file ({_file.Length} bytes)");
        }

        var raw = ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            await _file.ReadAsync(at, raw.AsMemory(0, bytes), cancellationToken).ConfigureAwait(false);
            var table = new uint[Header.NumGtesPerGt];
            for (int i = 0; i < table.Length; i++)
            {
                table[i] = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * 4));
            }

            lock (_tablesLock)
            {
                if (_tables.Count >= MaxCachedTables)
                {
                    _tables.Clear();
                }

                _tables[gtSector] = table;
            }

            return table;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(raw);
        }
    }

    /// <summary>Reads a grain marker (lba, size) and inflates its zlib data into a whole grain; the last one decoded is kept.</summary>
    private async ValueTask<byte[]> GetCompressedGrainAsync(long grain, long host, CancellationToken cancellationToken)
    {
        lock (_grainLock)
        {
            if (_lastGrain.Grain == grain && _lastGrain.Data is { } hit)
            {
                return hit;
            }
        }

        var head = new byte[VmdkMarker.GrainMarkerHeader];
        await _file.ReadAsync(host, head, cancellationToken).ConfigureAwait(false);
        if (!VmdkMarker.TryReadGrainMarker(head, GrainBytes, out ulong lba, out int size, out string? error))
        {
            throw new ImageFormatException($"vmdk: '{_name}' at offset {host}: {error}");
        }

        if (lba != (ulong)(grain * (long)Header.GrainSize))
        {
            throw new ImageFormatException($"vmdk: '{_name}' at offset {host}: grain marker says sector {lba}, but the grain table points it at grain {grain} (sector {grain * (long)Header.GrainSize})");
        }

        if (size > _file.Length - host - VmdkMarker.GrainMarkerHeader)
        {
            throw new ImageFormatException($"vmdk: '{_name}' at offset {host}: compressed grain of {size} bytes runs past the end of the file ({_file.Length} bytes)");
        }

        var compressed = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            await _file.ReadAsync(host + VmdkMarker.GrainMarkerHeader, compressed.AsMemory(0, size), cancellationToken).ConfigureAwait(false);
            long expected = Math.Min(GrainBytes, _length - (grain * GrainBytes));
            var data = Inflate(compressed, size, (int)GrainBytes, expected, host);
            lock (_grainLock)
            {
                _lastGrain = (grain, data);
            }

            return data;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }
    }

    private byte[] Inflate(byte[] compressed, int length, int grainBytes, long expected, long host)
    {
        var output = new byte[grainBytes];
        int total = 0;
        try
        {
            using var input = new MemoryStream(compressed, 0, length, writable: false);
            using var z = new ZLibStream(input, CompressionMode.Decompress);
            int n;
            while (total < output.Length && (n = z.Read(output, total, output.Length - total)) > 0)
            {
                total += n;
            }

            if (total == output.Length && z.ReadByte() >= 0)
            {
                throw new ImageFormatException($"vmdk: '{_name}' at offset {host}: compressed grain inflates to more than a grain ({grainBytes} bytes)");
            }
        }
        catch (InvalidDataException e)
        {
            throw new ImageFormatException($"vmdk: '{_name}' at offset {host}: compressed grain is not valid zlib data: {e.Message}");
        }

        if (total < expected)
        {
            throw new ImageFormatException($"vmdk: '{_name}' at offset {host}: compressed grain inflates to {total} bytes, expected {expected}");
        }

        return output;
    }

    public override Dictionary<string, object?> Describe(string filename, string format)
    {
        var d = new Dictionary<string, object?>();
        if (Header.IsCompressed)
        {
            d["compressed"] = true;
        }

        d["virtual-size"] = Length;
        d["filename"] = filename;
        d["cluster-size"] = GrainBytes;
        d["format"] = format;
        return d;
    }
}
