using System.Buffers;
using System.Buffers.Binary;
using UrlDisk.Opening;

namespace UrlDisk.Formats.Vhdx;

/// <summary>
/// A VHDX image, read-only (Microsoft's "VHDX Format Specification" 1.0): headers, region table, metadata and a
/// block allocation table whose payload entries are interleaved with sector-bitmap entries; differencing images
/// take the blocks (or, for partially present blocks, the sectors) they lack from their parent. A dirty log is
/// replayed in memory.
/// </summary>
internal sealed class VhdxImage : BlockDevice, IHasBacking
{
    private const long MiB = 1 << 20;
    private const int MaxBatEntries = 1 << 24;

    private readonly IBlockDevice _file;
    private readonly ulong[] _bat;
    private readonly long _chunkRatio;
    private readonly Dictionary<long, byte[]?> _logPages;
    private readonly BackingImage? _parent;
    private readonly long _batOffset;

    private VhdxImage(IBlockDevice file, VhdxHeader header, VhdxMetadata metadata, ulong[] bat, long batOffset, long chunkRatio, Dictionary<long, byte[]?> logPages, BackingImage? parent, IReadOnlyList<VhdxRegion> regions)
    {
        Regions = regions;
        _file = file;
        Header = header;
        Metadata = metadata;
        _bat = bat;
        _batOffset = batOffset;
        _chunkRatio = chunkRatio;
        _logPages = logPages;
        _parent = parent;
        Info = new BlockDeviceInfo
        {
            Driver = "vhdx",
            DisplayName = file.Info.DisplayName,
            ReportsAllocation = true,
            PreferredBlockSize = (int)Math.Min(metadata.BlockSize, MiB),
            Details = new Dictionary<string, object?> { ["cluster-size"] = (long)metadata.BlockSize },
            Child = file,
        };
    }

    public VhdxHeader Header { get; }

    public VhdxMetadata Metadata { get; }

    /// <summary>The region table's entries, in table order (the checker needs them to find blocks overlapping metadata).</summary>
    internal IReadOnlyList<VhdxRegion> Regions { get; }

    /// <summary>The block allocation table as read (payload and sector-bitmap entries interleaved).</summary>
    internal ReadOnlySpan<ulong> Bat => _bat;

    /// <summary>Payload blocks per sector-bitmap block.</summary>
    internal long ChunkRatio => _chunkRatio;

    /// <summary>True when the log had entries that were replayed in memory.</summary>
    public bool LogReplayed => _logPages.Count > 0;

    /// <summary>The log's pages by file offset (null: zeros), laid over the file when reading.</summary>
    internal IReadOnlyDictionary<long, byte[]?> LogPages => _logPages;

    public string? ParentLocation => _parent?.Location;

    string? IHasBacking.BackingLocation => ParentLocation;

    /// <summary>Opens the parent (once) and returns it; null when there is none.</summary>
    public ValueTask<IBlockDevice?> GetBackingAsync(CancellationToken cancellationToken = default)
        => _parent is null ? ValueTask.FromResult<IBlockDevice?>(null) : _parent.GetAsync(cancellationToken);

    public override long Length => (long)Metadata.VirtualDiskSize;

    public override BlockDeviceInfo Info { get; }

    public static async ValueTask<VhdxImage> OpenAsync(IBlockDevice file, OpenContext context, CancellationToken cancellationToken)
    {
        if (file.Length < 4 * MiB)
        {
            throw new ImageFormatException($"vhdx: the file ({file.Length} bytes) is too short for the headers, log, BAT and metadata");
        }

        var buffer = new byte[VhdxRegionTable.Size];
        await file.ReadAsync(0, buffer.AsMemory(0, 8), cancellationToken).ConfigureAwait(false);
        if (!buffer.AsSpan(0, 8).SequenceEqual("vhdxfile"u8))
        {
            throw new ImageFormatException("vhdx: no file identifier \"vhdxfile\" at offset 0");
        }

        VhdxHeader? header = null;
        foreach (long at in new[] { 64 * 1024L, 128 * 1024L })
        {
            await file.ReadAsync(at, buffer.AsMemory(0, VhdxHeader.Size), cancellationToken).ConfigureAwait(false);
            if (VhdxHeader.TryParse(buffer) is { } h && (header is null || h.Sequence > header.Sequence))
            {
                header = h;
            }
        }

        if (header is null)
        {
            throw new ImageFormatException("vhdx: neither header (at offsets 65536 and 131072) has a valid signature and checksum");
        }

        if (header.Version != 1 || header.LogVersion != 0)
        {
            throw new ImageFormatException($"vhdx: header version {header.Version} / log version {header.LogVersion} are not supported (1 / 0)");
        }

        var logPages = new Dictionary<long, byte[]?>();
        if (header.LogGuid != Guid.Empty && header.LogLength != 0)
        {
            if (header.LogOffset % MiB != 0 || header.LogLength % MiB != 0 || header.LogLength > 256 * MiB || header.LogOffset + header.LogLength > (ulong)file.Length)
            {
                throw new ImageFormatException($"vhdx: the log at {header.LogOffset} ({header.LogLength} bytes) is unaligned, over 256 MiB or outside the file");
            }

            var log = new byte[header.LogLength];
            await file.ReadAsync((long)header.LogOffset, log, cancellationToken).ConfigureAwait(false);
            logPages = VhdxLog.Replay(log, (long)header.LogOffset, header.LogGuid);
        }

        var reader = new Reader(file, logPages);
        List<VhdxRegion>? regions = null;
        foreach (long at in new[] { 192 * 1024L, 256 * 1024L })
        {
            await reader.ReadAsync(at, buffer, cancellationToken).ConfigureAwait(false);
            regions = VhdxRegionTable.TryParse(buffer, at, file.Length);
            if (regions is not null)
            {
                break;
            }
        }

        if (regions is null)
        {
            throw new ImageFormatException("vhdx: neither region table (at offsets 196608 and 262144) has a valid signature and checksum");
        }

        var batRegion = regions.FirstOrDefault(r => r.Id == VhdxRegionTable.Bat);
        var metaRegion = regions.FirstOrDefault(r => r.Id == VhdxRegionTable.Metadata);
        if (batRegion.Length == 0 || metaRegion.Length == 0)
        {
            throw new ImageFormatException("vhdx: the region table lacks the BAT or the metadata region");
        }

        if (metaRegion.Length > 16 * MiB)
        {
            throw new ImageFormatException($"vhdx: metadata region of {metaRegion.Length} bytes is larger than 16 MiB");
        }

        var meta = new byte[metaRegion.Length];
        await reader.ReadAsync(metaRegion.Offset, meta, cancellationToken).ConfigureAwait(false);
        var metadata = VhdxMetadata.Parse(meta, metaRegion.Offset);

        long chunkRatio = (1L << 23) * metadata.LogicalSectorSize / metadata.BlockSize;
        long payloadBlocks = (long)((metadata.VirtualDiskSize + metadata.BlockSize - 1) / metadata.BlockSize);
        long chunks = (payloadBlocks + chunkRatio - 1) / chunkRatio;
        long entries = metadata.HasParent ? chunks * (chunkRatio + 1) : payloadBlocks + ((payloadBlocks - 1) / chunkRatio);
        if (entries > MaxBatEntries || entries * 8 > batRegion.Length)
        {
            throw new ImageFormatException($"vhdx: the BAT region at {batRegion.Offset} ({batRegion.Length} bytes) cannot hold the {entries} entries the disk size needs (or they are over {MaxBatEntries})");
        }

        var batBytes = new byte[entries * 8];
        await reader.ReadAsync(batRegion.Offset, batBytes, cancellationToken).ConfigureAwait(false);
        var bat = new ulong[entries];
        for (int i = 0; i < bat.Length; i++)
        {
            bat[i] = BinaryPrimitives.ReadUInt64LittleEndian(batBytes.AsSpan(i * 8));
        }

        BackingImage? parent = null;
        if (metadata.HasParent && !context.NoBacking)
        {
            string name = ParentName(metadata.ParentLocator);
            parent = BackingChain.Resolve(name, "vhdx", context, "vhdx");
        }

        return new VhdxImage(file, header, metadata, bat, batRegion.Offset, chunkRatio, logPages, parent, regions);
    }

    /// <summary>The parent's relative path (Windows separators become '/'), resolved later against this image's location.</summary>
    private static string ParentName(IReadOnlyDictionary<string, string> locator)
    {
        foreach (string key in new[] { "relative_path", "absolute_win32_path" })
        {
            if (locator.TryGetValue(key, out var path) && path.Length > 0)
            {
                path = path.Replace('\\', '/');
                if (key == "absolute_win32_path")
                {
                    path = path[(path.LastIndexOf('/') + 1)..]; // another machine's path: look beside this image
                }

                while (path.StartsWith("./", StringComparison.Ordinal))
                {
                    path = path[2..];
                }

                return path;
            }
        }

        throw new ImageFormatException("vhdx: the parent locator has neither relative_path nor absolute_win32_path");
    }

    public async ValueTask<IBlockDevice?> GetParentAsync(CancellationToken cancellationToken)
    {
        if (_parent is null)
        {
            return null;
        }

        var parent = await _parent.GetAsync(cancellationToken).ConfigureAwait(false);
        if (parent is VhdxImage v && Metadata.ParentLocator.TryGetValue("parent_linkage", out var linkage)
            && Guid.TryParse(linkage, out var expected) && v.Header.DataWriteGuid != expected)
        {
            throw new ImageFormatException($"vhdx: the parent '{_parent.Location}' has data write GUID {v.Header.DataWriteGuid}, not the {expected} this differencing image links to");
        }

        return parent;
    }

    /// <summary>The run of guest bytes at <paramref name="offset"/> inside one block: its state and file offset.</summary>
    private (int State, long Host, long Length) Map(long offset, long maxLength)
    {
        long block = offset / Metadata.BlockSize;
        long within = offset % Metadata.BlockSize;
        long length = Math.Min(maxLength, Metadata.BlockSize - within);
        long index = block + (block / _chunkRatio);
        ulong entry = _bat[index];
        int state = (int)(entry & 7);
        long host = (long)(entry & 0xFFFFFFFFFFF00000UL);
        if (state is 6 or 7)
        {
            long needed = Math.Min(Metadata.BlockSize, Length - (block * Metadata.BlockSize));
            if (host < MiB || host > _file.Length - needed)
            {
                throw new ImageFormatException($"vhdx: BAT entry {index} (at offset {_batOffset + (index * 8)}): block at {host} is inside the headers or outside the file ({_file.Length} bytes)");
            }

            return (state, host + within, length);
        }

        if (state is 4 or > 7)
        {
            throw new ImageFormatException($"vhdx: BAT entry {index} (at offset {_batOffset + (index * 8)}): unknown payload state {state}");
        }

        return (state, 0, length);
    }

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var reader = new Reader(_file, _logPages);
        while (buffer.Length > 0)
        {
            var (state, host, n) = Map(offset, buffer.Length);
            var part = buffer[..(int)n];
            switch (state)
            {
                case 6:
                    await reader.ReadAsync(host, part, cancellationToken).ConfigureAwait(false);
                    break;
                case 7 when _parent is not null:
                    await ReadPartialAsync(reader, offset, host, part, cancellationToken).ConfigureAwait(false);
                    break;
                case 0 when _parent is not null:
                    await ExtentRuns.ReadFromParentAsync(await GetParentAsync(cancellationToken).ConfigureAwait(false), offset, part, cancellationToken).ConfigureAwait(false);
                    break;
                case 7:
                    await reader.ReadAsync(host, part, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    part.Span.Clear();
                    break;
            }

            offset += n;
            buffer = buffer[(int)n..];
        }
    }

    /// <summary>A partially present block: the chunk's sector bitmap (1 bit per logical sector) says which sectors are here.</summary>
    private async ValueTask ReadPartialAsync(Reader reader, long offset, long host, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int sector = (int)Metadata.LogicalSectorSize;
        long chunk = offset / Metadata.BlockSize / _chunkRatio;
        long bitmapIndex = (chunk * (_chunkRatio + 1)) + _chunkRatio;
        ulong entry = _bat[bitmapIndex];
        long bitmapHost = (long)(entry & 0xFFFFFFFFFFF00000UL);
        if ((entry & 7) != 6 || bitmapHost < MiB || bitmapHost > _file.Length - MiB)
        {
            throw new ImageFormatException($"vhdx: BAT entry {bitmapIndex} (at offset {_batOffset + (bitmapIndex * 8)}): the sector bitmap of a partially present block is absent or outside the file");
        }

        long firstSector = (offset / sector) % (1L << 23);
        long lastSector = ((offset + buffer.Length - 1) / sector) % (1L << 23);
        int bytes = (int)((lastSector / 8) - (firstSector / 8) + 1);
        var bits = ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            await reader.ReadAsync(bitmapHost + (firstSector / 8), bits.AsMemory(0, bytes), cancellationToken).ConfigureAwait(false);
            bool Present(long s) => (bits[(int)((s / 8) - (firstSector / 8))] & (1 << (int)(s % 8))) != 0;
            int pos = 0;
            while (pos < buffer.Length)
            {
                long s = ((offset + pos) / sector) % (1L << 23);
                bool here = Present(s);
                int end = pos;
                while (end < buffer.Length && Present(((offset + end) / sector) % (1L << 23)) == here)
                {
                    end = (int)Math.Min(buffer.Length, ((((offset + end) / sector) + 1) * sector) - offset);
                }

                var part = buffer[pos..end];
                if (here)
                {
                    await reader.ReadAsync(host + pos, part, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await ExtentRuns.ReadFromParentAsync(await GetParentAsync(cancellationToken).ConfigureAwait(false), offset + pos, part, cancellationToken).ConfigureAwait(false);
                }

                pos = end;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bits);
        }
    }

    protected override async ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        var list = new List<Extent>();
        long end = offset + length;
        while (offset < end && list.Count < 100_000)
        {
            var (state, host, n) = Map(offset, end - offset);
            switch (state)
            {
                case 6:
                    ExtentRuns.Add(list, new Extent(offset, n, ExtentFlags.Data, 0, _logPages.Count == 0 ? host : null));
                    break;
                case 7:
                    ExtentRuns.Add(list, new Extent(offset, n, ExtentFlags.Data));
                    break;
                case 0 when _parent is not null:
                    await ExtentRuns.AddFromParentAsync(list, await GetParentAsync(cancellationToken).ConfigureAwait(false), offset, n, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    ExtentRuns.Add(list, new Extent(offset, n, ExtentFlags.Zero));
                    break;
            }

            offset += n;
        }

        return list;
    }

    protected override async ValueTask DisposeCoreAsync()
    {
        if (_parent is not null)
        {
            await _parent.DisposeAsync().ConfigureAwait(false);
        }

        await _file.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Reads the file with the replayed log pages laid over it.</summary>
    private readonly struct Reader(IBlockDevice file, Dictionary<long, byte[]?> pages)
    {
        public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        {
            await file.ReadAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
            if (pages.Count == 0)
            {
                return;
            }

            for (long page = offset & ~4095L; page < offset + buffer.Length; page += 4096)
            {
                if (pages.TryGetValue(page, out var data))
                {
                    long from = Math.Max(page, offset);
                    long to = Math.Min(page + 4096, offset + buffer.Length);
                    var target = buffer.Span.Slice((int)(from - offset), (int)(to - from));
                    if (data is null)
                    {
                        target.Clear();
                    }
                    else
                    {
                        data.AsSpan((int)(from - page), (int)(to - from)).CopyTo(target);
                    }
                }
            }
        }
    }
}
