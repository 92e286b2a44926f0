using System.Buffers.Binary;
namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// The refcount table and blocks of a writable image, and cluster allocation. Every change is written to disk
/// before the caller writes the metadata that uses the cluster, so a crash leaves at worst leaked clusters.
/// Clusters about to be used (allocations, new refcount blocks and tables) are first shown to a guard, which
/// refuses any that hold metadata (corrupt refcounts make metadata look free).
/// Not thread-safe: callers hold the image's metadata lock.
/// </summary>
internal sealed class Qcow2Refcounts
{
    private readonly IHostFile _file;
    private readonly int _clusterBits;
    private readonly int _order;
    private readonly long _entriesPerBlock;
    private readonly Dictionary<long, byte[]> _blocks = [];
    private readonly Func<long, int, CancellationToken, ValueTask> _moveTable;
    private readonly Func<long, long, string, CancellationToken, ValueTask>? _guard;
    private readonly HostClusterSet _blockOffsets;
    private readonly bool _orderWrites;
    private ulong[] _table;
    private long _tableOffset;
    private long _freeHint = 1;

    private Qcow2Refcounts(IHostFile file, Qcow2Header header, ulong[] table, Func<long, int, CancellationToken, ValueTask> moveTable, Func<long, long, string, CancellationToken, ValueTask>? guard, bool orderWrites)
    {
        _orderWrites = orderWrites;
        _file = file;
        _clusterBits = header.ClusterBits;
        _order = header.RefcountOrder;
        _entriesPerBlock = (header.ClusterSize * 8) >> _order;
        _table = table;
        _tableOffset = (long)header.RefcountTableOffset;
        _moveTable = moveTable;
        _guard = guard;
        _blockOffsets = new HostClusterSet(_clusterBits);
        foreach (ulong e in table)
        {
            if (e != 0)
            {
                _blockOffsets.Add((long)(e & ~Qcow2Entries.RefcountTableReservedMask));
            }
        }
    }

    private long ClusterSize => 1L << _clusterBits;

    /// <summary>
    /// The longest run <see cref="AllocateAsync"/> can always find: a new refcount block takes the first cluster
    /// it covers, so with narrow blocks (small clusters, wide refcounts) a run as long as a block never fits.
    /// </summary>
    public long MaxRunClusters => Math.Max(1, _entriesPerBlock / 2);

    /// <summary>The largest refcount the image's refcount width can hold.</summary>
    public ulong MaxRefcount => RefcountBlock.MaxValue(_order);

    /// <param name="moveTable">Writes the new refcount table offset and cluster count into the header.</param>
    /// <param name="guard">Called with (offset, length, what) before clusters are used; throws to refuse them.</param>
    /// <param name="orderWrites">Flush between a new block or table and what points at it (see <see cref="Qcow2Image"/>'s barriers).</param>
    public static async ValueTask<Qcow2Refcounts> LoadAsync(IHostFile file, Qcow2Header header, Func<long, int, CancellationToken, ValueTask> moveTable, Func<long, long, string, CancellationToken, ValueTask>? guard, bool orderWrites, CancellationToken cancellationToken)
    {
        var bytes = new byte[header.RefcountTableClusters * header.ClusterSize];
        await file.ReadAsync((long)header.RefcountTableOffset, bytes, cancellationToken).ConfigureAwait(false);
        var table = new ulong[bytes.Length / 8];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(i * 8));
        }

        return new Qcow2Refcounts(file, header, table, moveTable, guard, orderWrites);
    }

    /// <summary>Names the refcount structure that host bytes [offset, offset+length) touch, or null.</summary>
    public string? FindOverlap(long offset, long length)
    {
        if (offset < _tableOffset + (_table.Length * 8L) && _tableOffset < offset + length)
        {
            return "the refcount table";
        }

        return _blockOffsets.AnyIn(offset, length) ? "a refcount block" : null;
    }

    private ValueTask GuardAsync(long offset, long length, string what, CancellationToken cancellationToken)
        => _guard?.Invoke(offset, length, what, cancellationToken) ?? ValueTask.CompletedTask;

    private ValueTask BarrierAsync(CancellationToken cancellationToken)
        => _orderWrites ? _file.FlushAsync(cancellationToken) : ValueTask.CompletedTask;

    public async ValueTask<ulong> GetAsync(long cluster, CancellationToken cancellationToken)
    {
        var block = await GetBlockAsync(cluster / _entriesPerBlock, cancellationToken).ConfigureAwait(false);
        return block is null ? 0 : RefcountBlock.Get(block, _order, cluster % _entriesPerBlock);
    }

    /// <summary>Allocates <paramref name="count"/> contiguous clusters with refcount 1 for <paramref name="what"/>; returns the host offset of the first.</summary>
    public async ValueTask<long> AllocateAsync(long count, string what, CancellationToken cancellationToken)
    {
        while (true)
        {
            long start = await FindFreeAsync(count, cancellationToken).ConfigureAwait(false);
            bool created = false;
            for (long b = start / _entriesPerBlock; b <= (start + count - 1) / _entriesPerBlock; b++)
            {
                if (await GetBlockAsync(b, cancellationToken).ConfigureAwait(false) is null)
                {
                    await CreateBlockAsync(b, cancellationToken).ConfigureAwait(false);
                    created = true;
                }
            }

            if (created)
            {
                continue; // the new block took a cluster (maybe one of ours): search again
            }

            await GuardAsync(start << _clusterBits, count << _clusterBits, what, cancellationToken).ConfigureAwait(false);
            await UpdateAsync(start, count, 1, cancellationToken).ConfigureAwait(false);
            _freeHint = start + count;
            return start << _clusterBits;
        }
    }

    /// <summary>Allocates exactly clusters [first, first+count) if they are all free; false (nothing changed) otherwise.</summary>
    public async ValueTask<bool> TryAllocateAtAsync(long first, long count, string what, CancellationToken cancellationToken)
    {
        for (long b = first / _entriesPerBlock; b <= (first + count - 1) / _entriesPerBlock; b++)
        {
            if (await GetBlockAsync(b, cancellationToken).ConfigureAwait(false) is null)
            {
                await CreateBlockAsync(b, cancellationToken).ConfigureAwait(false);
            }
        }

        for (long c = first; c < first + count; c++)
        {
            if (await GetAsync(c, cancellationToken).ConfigureAwait(false) != 0)
            {
                return false;
            }
        }

        await GuardAsync(first << _clusterBits, count << _clusterBits, what, cancellationToken).ConfigureAwait(false);
        await UpdateAsync(first, count, 1, cancellationToken).ConfigureAwait(false);
        _freeHint = Math.Max(_freeHint, first + count);
        return true;
    }

    /// <summary>Adds <paramref name="delta"/> to the refcounts of clusters [first, first+count) and writes the changed bytes.</summary>
    public async ValueTask UpdateAsync(long first, long count, long delta, CancellationToken cancellationToken)
    {
        long end = first + count;
        for (long c = first; c < end;)
        {
            long b = c / _entriesPerBlock;
            long blockEnd = Math.Min(end, (b + 1) * _entriesPerBlock);
            var block = await GetBlockAsync(b, cancellationToken).ConfigureAwait(false)
                ?? throw new ImageFormatException($"qcow2: cluster {c} has no refcount block (refcount table entry {b} is empty)");
            ulong max = RefcountBlock.MaxValue(_order);
            int lo = int.MaxValue, hi = 0;
            for (long i = c; i < blockEnd; i++)
            {
                long idx = i % _entriesPerBlock;
                ulong v = RefcountBlock.Get(block, _order, idx);
                if (delta < 0 && v < (ulong)-delta)
                {
                    throw new ImageFormatException($"qcow2: refcount of cluster {i} would drop below zero");
                }

                ulong nv = delta < 0 ? v - (ulong)-delta : v + (ulong)delta;
                if (delta > 0 && (nv < v || nv > max))
                {
                    throw new ImageFormatException($"qcow2: refcount of cluster {i} would overflow {1 << _order} bits");
                }

                RefcountBlock.Set(block, _order, idx, nv);
                if (nv == 0 && i < _freeHint)
                {
                    _freeHint = Math.Max(1, i);
                }

                var (start, length) = RefcountBlock.ByteRange(_order, idx);
                lo = Math.Min(lo, start);
                hi = Math.Max(hi, start + length);
            }

            await _file.WriteAtAsync((long)(_table[b] & ~Qcow2Entries.RefcountTableReservedMask) + lo, block.AsMemory(lo, hi - lo), cancellationToken).ConfigureAwait(false);
            c = blockEnd;
        }
    }

    /// <summary>Sets one refcount (repair); false when the cluster has no refcount block.</summary>
    public async ValueTask<bool> SetAsync(long cluster, ulong value, CancellationToken cancellationToken)
    {
        ulong current = await GetAsync(cluster, cancellationToken).ConfigureAwait(false);
        if (current == value)
        {
            return true;
        }

        if (await GetBlockAsync(cluster / _entriesPerBlock, cancellationToken).ConfigureAwait(false) is null)
        {
            return false;
        }

        long delta = value > current ? (long)(value - current) : -(long)(current - value);
        await UpdateAsync(cluster, 1, delta, cancellationToken).ConfigureAwait(false);
        return true;
    }

    private async ValueTask<long> FindFreeAsync(long count, CancellationToken cancellationToken)
    {
        long c = Math.Max(1, _freeHint);
        long runStart = c;
        while (c - runStart < count)
        {
            long b = c / _entriesPerBlock;
            var block = await GetBlockAsync(b, cancellationToken).ConfigureAwait(false);
            if (block is null)
            {
                // A block without refcounts is entirely free.
                c = (b + 1) * _entriesPerBlock;
                continue;
            }

            if (RefcountBlock.Get(block, _order, c % _entriesPerBlock) != 0)
            {
                runStart = c + 1;
            }

            c++;
        }

        return runStart;
    }

    private async ValueTask<byte[]?> GetBlockAsync(long b, CancellationToken cancellationToken)
    {
        if (_blocks.TryGetValue(b, out var cached))
        {
            return cached;
        }

        if (b >= _table.Length || _table[b] == 0)
        {
            return null;
        }

        long offset = (long)(_table[b] & ~Qcow2Entries.RefcountTableReservedMask);
        if (offset <= 0 || (offset & (ClusterSize - 1)) != 0 || offset > _file.Length - ClusterSize)
        {
            throw new ImageFormatException($"qcow2: refcount table entry {b} (at offset {_tableOffset + (b * 8)}): block offset {offset} is unaligned or outside the file");
        }

        var block = new byte[ClusterSize];
        await _file.ReadAsync(offset, block, cancellationToken).ConfigureAwait(false);
        _blocks[b] = block;
        return block;
    }

    /// <summary>Creates refcount block <paramref name="b"/> at the first cluster it covers (free, since it had no block).</summary>
    private async ValueTask CreateBlockAsync(long b, CancellationToken cancellationToken)
    {
        long blockCluster = b * _entriesPerBlock;
        var block = new byte[ClusterSize];
        RefcountBlock.Set(block, _order, 0, 1);
        if (b >= _table.Length)
        {
            await GrowTableAsync(b, block, cancellationToken).ConfigureAwait(false);
            return;
        }

        await GuardAsync(blockCluster << _clusterBits, ClusterSize, "a new refcount block", cancellationToken).ConfigureAwait(false);
        await _file.WriteAtAsync(blockCluster << _clusterBits, block, cancellationToken).ConfigureAwait(false);
        await BarrierAsync(cancellationToken).ConfigureAwait(false); // the block (counting itself) before the table entry
        _blocks[b] = block;
        _blockOffsets.Add(blockCluster << _clusterBits);
        _table[b] = (ulong)(blockCluster << _clusterBits);
        var entry = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(entry, _table[b]);
        await _file.WriteAtAsync(_tableOffset + (b * 8), entry, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A block past the end of the table: the new block goes at the first cluster it covers and a larger
    /// table right after it (both counted in the new block), then the header points at the new table.
    /// </summary>
    private async ValueTask GrowTableAsync(long b, byte[] block, CancellationToken cancellationToken)
    {
        long entriesPerCluster = ClusterSize / 8;
        long neededClusters = (b + entriesPerCluster) / entriesPerCluster;
        long oldClusters = _table.Length / entriesPerCluster;
        long newClusters = Math.Max(neededClusters, oldClusters * 2);
        if (newClusters + 1 > _entriesPerBlock || newClusters * ClusterSize > 64L * 1024 * 1024)
        {
            throw new UrlDiskException($"qcow2: the image needs a refcount table of {newClusters} clusters, more than this implementation can grow; use a larger cluster size");
        }

        long blockCluster = b * _entriesPerBlock;
        for (long i = 1; i <= newClusters; i++)
        {
            RefcountBlock.Set(block, _order, i, 1);
        }

        var table = new ulong[newClusters * entriesPerCluster];
        _table.CopyTo(table, 0);
        table[b] = (ulong)(blockCluster << _clusterBits);
        var bytes = new byte[table.Length * 8];
        for (int i = 0; i < table.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(i * 8), table[i]);
        }

        long newTableOffset = (blockCluster + 1) << _clusterBits;
        await GuardAsync(blockCluster << _clusterBits, (newClusters + 1) << _clusterBits, "a new refcount block and table", cancellationToken).ConfigureAwait(false);
        await _file.WriteAtAsync(blockCluster << _clusterBits, block, cancellationToken).ConfigureAwait(false);
        await _file.WriteAtAsync(newTableOffset, bytes, cancellationToken).ConfigureAwait(false);
        await BarrierAsync(cancellationToken).ConfigureAwait(false); // block and table before the header points at them
        await _moveTable(newTableOffset, (int)newClusters, cancellationToken).ConfigureAwait(false);
        await BarrierAsync(cancellationToken).ConfigureAwait(false); // the header leaves the old table before its refcounts drop
        long oldOffset = _tableOffset;
        _blocks[b] = block;
        _blockOffsets.Add(blockCluster << _clusterBits);
        _table = table;
        _tableOffset = newTableOffset;
        await UpdateAsync(oldOffset >> _clusterBits, oldClusters, -1, cancellationToken).ConfigureAwait(false);
    }
}
