using System.Buffers;
using System.Buffers.Binary;
using UrlDisk.Opening;

namespace UrlDisk.Formats.Vpc;

/// <summary>
/// A VHD (qemu's "vpc") image, read-only: fixed (the data, then the footer), dynamic (a block allocation table of
/// blocks, each a sector bitmap and data) and differencing (a dynamic image whose absent sectors come from a parent).
/// </summary>
internal sealed class VpcImage : BlockDevice, IHasBacking
{
    /// <summary>qemu's limit (VHD_MAX_SECTORS): about 2040 GiB.</summary>
    public const long MaxSectors = 0xff000000L;

    /// <summary>Bound on the table held in memory (64 MiB of entries).</summary>
    private const long MaxTableEntries = 1L << 24;

    private const uint Unallocated = uint.MaxValue;

    private readonly IBlockDevice _file;
    private readonly long _length;
    private readonly uint[] _bat;
    private readonly int _blockSize;
    private readonly int _bitmapSize;
    private readonly BackingImage? _parent;
    private readonly long _dataEnd;

    private VpcImage(IBlockDevice file, VpcFooter footer, VpcDynamicHeader? header, uint[] bat, long length, BackingImage? parent)
    {
        _file = file;
        Footer = footer;
        Header = header;
        _bat = bat;
        _length = length;
        _parent = parent;
        _blockSize = (int)(header?.BlockSize ?? 0);
        _bitmapSize = header is null ? 0 : (int)((((header.BlockSize / 512) + 7) / 8 + 511) & ~511L);
        _dataEnd = footer.DiskType == VpcDiskType.Fixed ? file.Length - VpcFooter.Size : file.Length;
        // qemu-img info shows the block size as the cluster size of a dynamic or differencing VHD.
        var details = new Dictionary<string, object?>();
        if (header is not null)
        {
            details["cluster-size"] = (long)header.BlockSize;
        }

        Info = new BlockDeviceInfo
        {
            Driver = "vpc",
            DisplayName = file.Info.DisplayName,
            ReportsAllocation = header is not null,
            PreferredBlockSize = header is null ? 64 * 1024 : (int)Math.Min(header.BlockSize, 1 << 20),
            Details = details,
            Child = file,
        };
    }

    public VpcFooter Footer { get; }

    public VpcDynamicHeader? Header { get; }

    /// <summary>The resolved location of the parent of a differencing image.</summary>
    public string? ParentLocation => _parent?.Location;

    string? IHasBacking.BackingLocation => ParentLocation;

    /// <summary>Opens the parent (once) and returns it; null when there is none.</summary>
    public ValueTask<IBlockDevice?> GetBackingAsync(CancellationToken cancellationToken = default)
        => _parent is null ? ValueTask.FromResult<IBlockDevice?>(null) : _parent.GetAsync(cancellationToken);

    public override long Length => _length;

    public override BlockDeviceInfo Info { get; }

    public static async ValueTask<VpcImage> OpenAsync(IBlockDevice file, string? forceSizeCalc, OpenContext context, CancellationToken cancellationToken)
    {
        if (file.Length < VpcFooter.Size)
        {
            throw new ImageFormatException($"vpc: the file ({file.Length} bytes) is shorter than a VHD footer ({VpcFooter.Size} bytes)");
        }

        var buffer = new byte[VpcDynamicHeader.Size];
        await file.ReadAsync(0, buffer.AsMemory(0, VpcFooter.Size), cancellationToken).ConfigureAwait(false);
        long footerOffset = 0;
        if (!VpcFooter.HasCookie(buffer))
        {
            // A fixed disk has its footer only at the end.
            footerOffset = file.Length - VpcFooter.Size;
            await file.ReadAsync(footerOffset, buffer.AsMemory(0, VpcFooter.Size), cancellationToken).ConfigureAwait(false);
        }

        var footer = VpcFooter.Parse(buffer.AsSpan(0, VpcFooter.Size), footerOffset);
        bool currentSize = VpcSizeRule.UsesCurrentSize(footer, forceSizeCalc);
        long sectors = currentSize ? (long)Math.Min(footer.CurrentSize / 512, long.MaxValue / 512) : footer.GeometrySectors;
        if (sectors > MaxSectors)
        {
            throw new ImageFormatException($"vpc: footer at offset {footerOffset}: the disk has {sectors} sectors, more than the {MaxSectors} a VHD can address");
        }

        long length = sectors * 512;
        if (footer.DiskType == VpcDiskType.Fixed)
        {
            return new VpcImage(file, footer, null, [], length, null);
        }

        if (footer.DataOffset > (ulong)(file.Length - VpcDynamicHeader.Size))
        {
            throw new ImageFormatException($"vpc: footer at offset {footerOffset}: dynamic header offset {footer.DataOffset} is outside the file ({file.Length} bytes)");
        }

        long headerOffset = (long)footer.DataOffset;
        await file.ReadAsync(headerOffset, buffer, cancellationToken).ConfigureAwait(false);
        var header = VpcDynamicHeader.Parse(buffer, headerOffset);
        long needed = (length + header.BlockSize - 1) / header.BlockSize;
        if (header.MaxTableEntries < needed)
        {
            throw new ImageFormatException($"vpc: dynamic header at offset {headerOffset}: the block table has {header.MaxTableEntries} entries, fewer than the {needed} the disk size needs");
        }

        if (needed > MaxTableEntries || header.TableOffset > (ulong)file.Length || (ulong)(needed * 4) > (ulong)file.Length - header.TableOffset)
        {
            throw new ImageFormatException($"vpc: dynamic header at offset {headerOffset}: the block table at {header.TableOffset} ({needed} entries) does not fit in the file ({file.Length} bytes)");
        }

        var bat = await ReadTableAsync(file, (long)header.TableOffset, (int)needed, cancellationToken).ConfigureAwait(false);
        BackingImage? parent = null;
        if (footer.DiskType == VpcDiskType.Differencing && !context.NoBacking)
        {
            string name = await VpcParentName.FindAsync(file, header, cancellationToken).ConfigureAwait(false);
            parent = BackingChain.Resolve(name, "vpc", context, "vpc");
        }

        return new VpcImage(file, footer, header, bat, length, parent);
    }

    private static async ValueTask<uint[]> ReadTableAsync(IBlockDevice file, long offset, int entries, CancellationToken cancellationToken)
    {
        var table = new uint[entries];
        var bytes = ArrayPool<byte>.Shared.Rent(Math.Min(entries * 4, 1 << 20));
        try
        {
            for (int done = 0; done < entries;)
            {
                int n = Math.Min(entries - done, bytes.Length / 4);
                await file.ReadAsync(offset + (done * 4L), bytes.AsMemory(0, n * 4), cancellationToken).ConfigureAwait(false);
                for (int i = 0; i < n; i++)
                {
                    table[done + i] = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(i * 4));
                }

                done += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }

        return table;
    }

    /// <summary>The parent image of a differencing disk (opened on first use), checked against the unique id the child records.</summary>
    public async ValueTask<IBlockDevice?> GetParentAsync(CancellationToken cancellationToken)
    {
        if (_parent is null)
        {
            return null;
        }

        var parent = await _parent.GetAsync(cancellationToken).ConfigureAwait(false);
        if (parent is VpcImage vpc && Header is { } h && h.ParentUniqueId != Guid.Empty && vpc.Footer.UniqueId != h.ParentUniqueId)
        {
            throw new ImageFormatException($"vpc: the parent '{_parent.Location}' has unique id {vpc.Footer.UniqueId}, not the {h.ParentUniqueId} this differencing disk was made from");
        }

        return parent;
    }

    /// <summary>Where the data of guest <paramref name="block"/> lives: the block's data start, or -1 when unallocated.</summary>
    private long BlockData(long block)
    {
        uint entry = _bat[block];
        if (entry == Unallocated)
        {
            return -1;
        }

        long start = ((long)entry * 512) + _bitmapSize;
        if (start + Math.Min(_blockSize, _length - (block * _blockSize)) > _dataEnd)
        {
            throw new ImageFormatException($"vpc: block table entry {block} (at offset {(long)Header!.TableOffset + (block * 4)}): block at sector {entry} is outside the file ({_file.Length} bytes)");
        }

        return start;
    }

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (Header is null)
        {
            int inFile = (int)Math.Clamp(_dataEnd - offset, 0, buffer.Length);
            if (inFile > 0)
            {
                await _file.ReadAsync(offset, buffer[..inFile], cancellationToken).ConfigureAwait(false);
            }

            buffer.Span[inFile..].Clear();
            return;
        }

        while (buffer.Length > 0)
        {
            long block = offset / _blockSize;
            int within = (int)(offset % _blockSize);
            int n = Math.Min(buffer.Length, _blockSize - within);
            long data = BlockData(block);
            if (data < 0)
            {
                await ExtentRuns.ReadFromParentAsync(await GetParentAsync(cancellationToken).ConfigureAwait(false), offset, buffer[..n], cancellationToken).ConfigureAwait(false);
            }
            else if (_parent is null)
            {
                // QEMU writes all-ones bitmaps and reads an allocated block whole; so does a dynamic disk here.
                await _file.ReadAsync(data + within, buffer[..n], cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await ReadDifferencingAsync(data, offset, within, buffer[..n], cancellationToken).ConfigureAwait(false);
            }

            offset += n;
            buffer = buffer[n..];
        }
    }

    /// <summary>In a differencing disk each sector whose bitmap bit (most significant first) is clear comes from the parent.</summary>
    private async ValueTask ReadDifferencingAsync(long data, long offset, int within, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var bitmap = ArrayPool<byte>.Shared.Rent(_bitmapSize);
        try
        {
            await _file.ReadAsync(data - _bitmapSize, bitmap.AsMemory(0, _bitmapSize), cancellationToken).ConfigureAwait(false);
            int pos = 0;
            while (pos < buffer.Length)
            {
                int sector = (within + pos) / 512;
                bool present = (bitmap[sector / 8] & (0x80 >> (sector % 8))) != 0;
                int end = Math.Min(buffer.Length, ((sector + 1) * 512) - within);
                while (end < buffer.Length)
                {
                    int s = (within + end) / 512;
                    if (((bitmap[s / 8] & (0x80 >> (s % 8))) != 0) != present)
                    {
                        break;
                    }

                    end = Math.Min(buffer.Length, ((s + 1) * 512) - within);
                }

                var part = buffer[pos..end];
                if (present)
                {
                    await _file.ReadAsync(data + within + pos, part, cancellationToken).ConfigureAwait(false);
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
            ArrayPool<byte>.Shared.Return(bitmap);
        }
    }

    protected override async ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        if (Header is null)
        {
            return [new Extent(offset, length, ExtentFlags.Data, 0, offset)];
        }

        var list = new List<Extent>();
        long end = offset + length;
        while (offset < end && list.Count < 100_000)
        {
            long block = offset / _blockSize;
            long n = Math.Min(end - offset, _blockSize - (offset % _blockSize));
            long data = BlockData(block);
            if (data >= 0)
            {
                ExtentRuns.Add(list, new Extent(offset, n, ExtentFlags.Data, 0, data + (offset % _blockSize)));
            }
            else if (_parent is null)
            {
                // As qemu-img map shows it: present at this level, reading as zeros.
                ExtentRuns.Add(list, new Extent(offset, n, ExtentFlags.Zero));
            }
            else
            {
                await ExtentRuns.AddFromParentAsync(list, await GetParentAsync(cancellationToken).ConfigureAwait(false), offset, n, cancellationToken).ConfigureAwait(false);
            }

            offset += n;
        }

        return list;
    }

    public override ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken = default)
        => Header is null && offset < _dataEnd ? _file.PrefetchAsync(offset, Math.Min(length, _dataEnd - offset), cancellationToken) : ValueTask.CompletedTask;

    protected override async ValueTask DisposeCoreAsync()
    {
        if (_parent is not null)
        {
            await _parent.DisposeAsync().ConfigureAwait(false);
        }

        await _file.DisposeAsync().ConfigureAwait(false);
    }
}
