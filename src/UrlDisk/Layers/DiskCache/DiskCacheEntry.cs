using Microsoft.Win32.SafeHandles;

namespace UrlDisk.Layers.DiskCache;

/// <summary>
/// One cached version of one file: a sparse data file as long as the file, and its index (header + records of the
/// blocks present, <see cref="DiskCacheIndex"/>). Knows which blocks are present from the records read so far;
/// <see cref="Refresh"/> reads those other processes appended since. Threads may call every member concurrently.
/// </summary>
internal sealed class DiskCacheEntry : IDisposable
{
    private readonly SafeFileHandle _data;
    private readonly SafeFileHandle _index;
    private readonly int _headerSize;
    private readonly uint[] _crcs;
    private readonly byte[] _present;
    private readonly Lock _refresh = new();
    private long _indexRead;
    private long _presentBlocks;
    private int _damagedRecords;

    public DiskCacheEntry(string name, DiskCacheHeader header, int headerSize, SafeFileHandle data, SafeFileHandle index)
    {
        Name = name;
        Header = header;
        _headerSize = headerSize;
        _data = data;
        _index = index;
        _crcs = new uint[header.BlockCount];
        _present = new byte[header.BlockCount];
        _indexRead = headerSize;
        Refresh();
    }

    /// <summary>The file name of the entry without extension (<c>LOCATION-VERSION</c>, both hashes).</summary>
    public string Name { get; }

    public DiskCacheHeader Header { get; }

    public int BlockSize => Header.BlockSize;

    /// <summary>Bytes of the blocks known present.</summary>
    public long PresentBytes => Math.Min(Interlocked.Read(ref _presentBlocks) * BlockSize, Header.Length);

    /// <summary>Records whose checksum failed (torn by a crash, or damaged); they claim nothing.</summary>
    public int DamagedRecords => Volatile.Read(ref _damagedRecords);

    public SafeFileHandle Data => _data;

    public bool TryGetBlock(long block, out uint crc)
    {
        if (Volatile.Read(ref _present[block]) != 0)
        {
            crc = Volatile.Read(ref _crcs[block]);
            return true;
        }

        crc = 0;
        return false;
    }

    /// <summary>The bytes of block <paramref name="block"/> in the file (the last block may be short).</summary>
    public int BlockLength(long block) => (int)Math.Min(BlockSize, Header.Length - (block * BlockSize));

    /// <summary>A block whose local bytes failed their checksum: read it from the source again.</summary>
    public void Forget(long block)
    {
        if (Interlocked.Exchange(ref _present[block], 0) != 0)
        {
            Interlocked.Decrement(ref _presentBlocks);
        }
    }

    /// <summary>Reads the records appended since the last look (by any process). No lock: a record read half-written fails its checksum and is only a claim lost.</summary>
    public void Refresh()
    {
        lock (_refresh)
        {
            long end = RandomAccess.GetLength(_index);
            long whole = _headerSize + ((end - _headerSize) / DiskCacheIndex.RecordSize * DiskCacheIndex.RecordSize);
            if (whole <= _indexRead)
            {
                return;
            }

            var buffer = new byte[Math.Min(whole - _indexRead, 1 << 20)];
            while (_indexRead < whole)
            {
                int want = (int)Math.Min(buffer.Length, whole - _indexRead);
                int got = RandomAccess.Read(_index, buffer.AsSpan(0, want), _indexRead);
                got -= got % DiskCacheIndex.RecordSize;
                if (got <= 0)
                {
                    break;
                }

                for (int at = 0; at < got; at += DiskCacheIndex.RecordSize)
                {
                    if (DiskCacheIndex.TryReadRecord(buffer.AsSpan(at, DiskCacheIndex.RecordSize), _crcs.Length, out long block, out uint crc))
                    {
                        Mark(block, crc);
                    }
                    else
                    {
                        Interlocked.Increment(ref _damagedRecords);
                    }
                }

                _indexRead += got;
            }
        }
    }

    /// <summary>
    /// Appends records for blocks whose data is already durable in the data file, under the directory lock (so
    /// appends from processes never interleave); a torn tail left by a crash is stepped over, not written into.
    /// </summary>
    public void Append(ReadOnlySpan<(long Block, uint Crc)> blocks, CacheDirectoryLock directoryLock)
    {
        var records = new byte[blocks.Length * DiskCacheIndex.RecordSize];
        for (int i = 0; i < blocks.Length; i++)
        {
            DiskCacheIndex.WriteRecord(blocks[i].Block, blocks[i].Crc, records.AsSpan(i * DiskCacheIndex.RecordSize));
        }

        using (directoryLock.Acquire())
        {
            long end = RandomAccess.GetLength(_index);
            long at = _headerSize + ((end - _headerSize + DiskCacheIndex.RecordSize - 1) / DiskCacheIndex.RecordSize * DiskCacheIndex.RecordSize);
            RandomAccess.Write(_index, records, at);
        }

        foreach (var (block, crc) in blocks)
        {
            Mark(block, crc);
        }
    }

    private void Mark(long block, uint crc)
    {
        Volatile.Write(ref _crcs[block], crc);
        if (Interlocked.Exchange(ref _present[block], 1) == 0)
        {
            Interlocked.Increment(ref _presentBlocks);
        }
    }

    public void Dispose()
    {
        _data.Dispose();
        _index.Dispose();
    }
}
