using System.Buffers.Binary;

namespace UrlDisk.Formats.Vdi;

/// <summary>
/// A VirtualBox image: the block map (read whole at open; its size is bounded by the file's) sends each block to
/// <c>offsetData + index × blockSize</c>; unallocated blocks read as zeros. Read-only.
/// </summary>
internal sealed class VdiImage : BlockDevice
{
    private readonly IBlockDevice _file;
    private readonly uint[] _map;
    private readonly long _blockSize;

    private VdiImage(IBlockDevice file, VdiHeader header, uint[] map)
    {
        _file = file;
        Header = header;
        _map = map;
        _blockSize = header.BlockSize;
        Info = new BlockDeviceInfo
        {
            Driver = "vdi",
            DisplayName = file.Info.DisplayName,
            ReportsAllocation = true,
            PreferredBlockSize = (int)Math.Min(header.BlockSize, 1 << 20),
            Details = new Dictionary<string, object?> { ["cluster-size"] = (long)header.BlockSize },
            Child = file,
        };
    }

    public VdiHeader Header { get; }

    public override long Length => (long)Header.DiskSize;

    public override BlockDeviceInfo Info { get; }

    public static async ValueTask<VdiImage> OpenAsync(IBlockDevice file, CancellationToken cancellationToken)
    {
        var head = new byte[VdiHeader.Size];
        if (file.Length < VdiHeader.Size)
        {
            throw new ImageFormatException($"vdi: the file is {file.Length} bytes, shorter than the 512-byte header");
        }

        await file.ReadAsync(0, head, cancellationToken).ConfigureAwait(false);
        if (!VdiHeader.TryRead(head, out var header, out string? error))
        {
            throw new ImageFormatException("vdi: " + error);
        }

        long mapBytes = header.BlocksInImage * 4L;
        if (header.OffsetBmap > file.Length || mapBytes > file.Length - header.OffsetBmap)
        {
            throw new ImageFormatException($"vdi: the block map at offset {header.OffsetBmap} ({header.BlocksInImage} entries) does not fit in the file ({file.Length} bytes)");
        }

        var bytes = new byte[mapBytes];
        await file.ReadAsync(header.OffsetBmap, bytes, cancellationToken).ConfigureAwait(false);
        var map = new uint[header.BlocksInImage];
        for (int i = 0; i < map.Length; i++)
        {
            map[i] = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * 4));
        }

        return new VdiImage(file, header, map);
    }

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (buffer.Length > 0)
        {
            var (allocated, host, length) = Run(offset, buffer.Length);
            int n = (int)length;
            if (allocated)
            {
                await _file.ReadAsync(host, buffer[..n], cancellationToken).ConfigureAwait(false);
            }
            else
            {
                buffer.Span[..n].Clear();
            }

            offset += n;
            buffer = buffer[n..];
        }
    }

    protected override ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        var list = new List<Extent>();
        long end = offset + length;
        while (offset < end && list.Count < 100_000)
        {
            var (allocated, host, n) = Run(offset, end - offset);
            ExtentRuns.Add(list, allocated ? new Extent(offset, n, ExtentFlags.Data, 0, host) : new Extent(offset, n, ExtentFlags.Hole | ExtentFlags.Zero));
            offset += n;
        }

        return new(list);
    }

    /// <summary>The run at <paramref name="offset"/>: consecutive blocks that are all unallocated, or allocated and contiguous in the file.</summary>
    private (bool Allocated, long Host, long Length) Run(long offset, long max)
    {
        long block = offset / _blockSize;
        long within = offset % _blockSize;
        long host = HostOf(block);
        long length = Math.Min(max, _blockSize - within);
        long next = block + 1;
        while (length < max && next < _map.Length)
        {
            long h = HostOf(next);
            if ((h < 0) != (host < 0) || (host >= 0 && h != host + ((next - block) * _blockSize)))
            {
                break;
            }

            length = Math.Min(max, length + _blockSize);
            next++;
        }

        return (host >= 0, host < 0 ? 0 : host + within, length);
    }

    /// <summary>Where block <paramref name="block"/> is in the file, or -1 when unallocated.</summary>
    private long HostOf(long block)
    {
        uint entry = _map[block];
        if (entry >= VdiHeader.FirstUnallocated)
        {
            return -1;
        }

        long host = Header.OffsetData + (entry * _blockSize);
        long needed = Math.Min(_blockSize, Length - (block * _blockSize));
        if (host > _file.Length - needed)
        {
            throw new ImageFormatException($"vdi: block map entry {block} (at offset {Header.OffsetBmap + (block * 4)}): block {entry} at offset {host} is past the end of the file ({_file.Length} bytes)");
        }

        return host;
    }

    protected override ValueTask DisposeCoreAsync() => _file.DisposeAsync();
}
