using System.Buffers;
using System.Buffers.Binary;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Writes: allocation with refcounts, copy-on-write of shared and partially written clusters, zero flags,
/// discard. Metadata is written through, ordered by flushes (barriers) where a disk that persists writes in
/// any order could otherwise leave corruption or lose acknowledged data: a new cluster's refcount and contents
/// (data, L2 table) are durable before any entry points at it, and an entry no longer points at a cluster before
/// its refcount drops. A crash then leaves at worst leaked clusters.
/// </summary>
internal sealed partial class Qcow2Image
{
    private long _compressedCursor;
    private bool IsV3 => Header.Version >= 3;

    /// <summary>
    /// A flush that orders the writes before it ahead of those after it. Skipped for a new image that nobody
    /// uses before it is complete (convert writes a temporary file and renames it at the end).
    /// </summary>
    private ValueTask BarrierAsync(CancellationToken cancellationToken)
        => _orderWrites ? _writableFile!.FlushAsync(cancellationToken) : ValueTask.CompletedTask;

    private async ValueTask PrepareForWritingAsync(CancellationToken cancellationToken)
    {
        _refcounts = await Qcow2Refcounts.LoadAsync(_writableFile!, Header, MoveRefcountTableAsync, (offset, length, what, ct) => GuardAsync(offset, length, what, ct), _orderWrites, cancellationToken).ConfigureAwait(false);
        LoadActiveL2Tables();
        if (IsV3 && Header.AutoclearFeatures != 0)
        {
            // Bitmaps and other autoclear data are not kept up to date here: clearing the bits tells readers so.
            _headerCluster = _headerCluster with { Header = Header with { AutoclearFeatures = 0 } };
            var field = new byte[8];
            await _writableFile!.WriteAtAsync(88, field, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask MoveRefcountTableAsync(long offset, int clusters, CancellationToken cancellationToken)
    {
        var fields = new byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(fields, (ulong)offset);
        BinaryPrimitives.WriteUInt32BigEndian(fields.AsSpan(8), (uint)clusters);
        await _writableFile!.WriteAtAsync(48, fields, cancellationToken).ConfigureAwait(false);
        _headerCluster = _headerCluster with { Header = Header with { RefcountTableOffset = (ulong)offset, RefcountTableClusters = (uint)clusters } };
    }

    private Qcow2Refcounts Refcounts => _refcounts ?? throw new ReadOnlyDeviceException("qcow2");

    private int EntryWords => ExtendedL2 ? 2 : 1;

    public override ValueTask FlushAsync(CancellationToken cancellationToken = default)
        => _writableFile?.FlushAsync(cancellationToken) ?? ValueTask.CompletedTask;

    protected override async ValueTask WriteCoreAsync(long offset, ReadOnlyMemory<byte> data, WriteOptions options, CancellationToken cancellationToken)
    {
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WriteLockedAsync(offset, data, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metadataLock.Release();
        }

        if ((options & WriteOptions.ForceUnitAccess) != 0)
        {
            await FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask WriteLockedAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        ThrowIfMarkedCorrupt();
        while (data.Length > 0)
        {
            // One L2 table at a time.
            long untilTableEnd = L2Coverage - (offset & (L2Coverage - 1));
            int n = (int)Math.Min(data.Length, untilTableEnd);
            await WriteInTableAsync(offset, data[..n], cancellationToken).ConfigureAwait(false);
            offset += n;
            data = data[n..];
        }
    }

    private async ValueTask WriteInTableAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        long l1Index = (offset >> ClusterBits) >> L2Bits;
        var (table, tableOffset) = await GetWritableL2Async(l1Index, cancellationToken).ConfigureAwait(false);
        long end = offset + data.Length;
        long pos = offset;
        while (pos < end)
        {
            long cluster = pos >> ClusterBits;
            int index = (int)(cluster & ((1L << L2Bits) - 1));
            var entry = ReadEntry(table, index);
            bool inPlace = !entry.IsCompressed && entry.IsCopied && entry.HostOffset != 0 && !entry.HasZeroFlag;
            if (inPlace)
            {
                long clusterEnd = Math.Min(end, (cluster + 1) << ClusterBits);
                await WriteInPlaceAsync(table, tableOffset, index, entry, pos, data.Slice((int)(pos - offset), (int)(clusterEnd - pos)), cancellationToken).ConfigureAwait(false);
                pos = clusterEnd;
                continue;
            }

            // A run of clusters that need new host clusters: allocate them together.
            long runEnd = cluster + 1;
            while (runEnd << ClusterBits < end && runEnd - cluster < Refcounts.MaxRunClusters)
            {
                var e = ReadEntry(table, (int)(runEnd & ((1L << L2Bits) - 1)));
                if (!e.IsCompressed && e.IsCopied && e.HostOffset != 0 && !e.HasZeroFlag)
                {
                    break;
                }

                runEnd++;
            }

            long runStartByte = cluster << ClusterBits;
            long runEndByte = runEnd << ClusterBits;
            int count = (int)(runEnd - cluster);
            int bufferLength = (int)(count * (long)ClusterSize);
            var rented = ArrayPool<byte>.Shared.Rent(bufferLength);
            var buffer = rented.AsMemory(0, bufferLength);
            try
            {
                // Parts of the first and last cluster the write does not cover keep their current contents.
                if (pos > runStartByte)
                {
                    await ReadContentAsync(runStartByte, buffer[..(int)(pos - runStartByte)], locked: true, cancellationToken).ConfigureAwait(false);
                }

                long writeEnd = Math.Min(end, runEndByte);
                if (writeEnd < runEndByte)
                {
                    int tail = (int)(runEndByte - writeEnd);
                    await ReadContentClampedAsync(writeEnd, buffer.Slice(buffer.Length - tail, tail), cancellationToken).ConfigureAwait(false);
                }

                data.Slice((int)(pos - offset), (int)(writeEnd - pos)).CopyTo(buffer[(int)(pos - runStartByte)..]);
                long host = await Refcounts.AllocateAsync(count, count == 1 ? "a new data cluster" : $"{count} new data clusters", cancellationToken).ConfigureAwait(false);
                await _writableFile!.WriteAtAsync(host, buffer, cancellationToken).ConfigureAwait(false);
                await BarrierAsync(cancellationToken).ConfigureAwait(false); // refcounts and data before the entries
                var old = new List<L2Entry>(count);
                for (int i = 0; i < count; i++)
                {
                    int idx = index + i;
                    old.Add(ReadEntry(table, idx));
                    SetEntry(table, idx, L2Entry.Standard(host + ((long)i << ClusterBits), copied: true), ExtendedL2 ? 0xFFFF_FFFFUL : 0);
                }

                await WriteEntriesAsync(table, tableOffset, index, count, cancellationToken).ConfigureAwait(false);
                await ReleaseAsync(old, cancellationToken).ConfigureAwait(false);

                pos = writeEnd;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Reads current contents, zero-filling what lies past the virtual size (the tail of the last cluster).</summary>
    private async ValueTask ReadContentClampedAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int n = (int)Math.Clamp(Length - offset, 0, buffer.Length);
        if (n > 0)
        {
            await ReadContentAsync(offset, buffer[..n], locked: true, cancellationToken).ConfigureAwait(false);
        }

        buffer.Span[n..].Clear();
    }

    private async ValueTask WriteInPlaceAsync(ulong[] table, long tableOffset, int index, L2Entry entry, long pos, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await GuardAsync(entry.HostOffset, ClusterSize, "a data cluster written in place", cancellationToken).ConfigureAwait(false);
        long within = pos & (ClusterSize - 1);
        if (!ExtendedL2)
        {
            await _writableFile!.WriteAtAsync(entry.HostOffset + within, data, cancellationToken).ConfigureAwait(false);
            return;
        }

        // Subclusters not yet allocated must be written whole: fill their uncovered parts from below.
        long sub = 1L << SubclusterBits;
        long first = within & ~(sub - 1);
        long last = (within + data.Length + sub - 1) & ~(sub - 1);
        uint mask = 0;
        for (long s = first; s < last; s += sub)
        {
            mask |= 1u << (int)(s >> SubclusterBits);
        }

        long clusterStart = pos - within;
        if ((entry.AllocatedSubclusters & mask) == mask)
        {
            await _writableFile!.WriteAtAsync(entry.HostOffset + within, data, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var buffer = new byte[last - first];
            await ReadContentClampedAsync(clusterStart + first, buffer, cancellationToken).ConfigureAwait(false);
            data.CopyTo(buffer.AsMemory((int)(within - first)));
            await _writableFile!.WriteAtAsync(entry.HostOffset + first, buffer, cancellationToken).ConfigureAwait(false);
        }

        ulong bitmap = (entry.Bitmap | mask) & ~((ulong)mask << 32);
        if (bitmap != entry.Bitmap)
        {
            await BarrierAsync(cancellationToken).ConfigureAwait(false); // the subclusters' data before the bits that expose it
            SetEntry(table, index, new L2Entry(entry.Raw), bitmap);
            await WriteEntriesAsync(table, tableOffset, index, 1, cancellationToken).ConfigureAwait(false);
        }
    }

    protected override async ValueTask WriteZeroesCoreAsync(long offset, long length, WriteOptions options, CancellationToken cancellationToken)
    {
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await ZeroOrDiscardLockedAsync(offset, length, discard: false, keepAllocated: (options & WriteOptions.NoHole) != 0, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    protected override async ValueTask TrimCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await ZeroOrDiscardLockedAsync(offset, length, discard: true, keepAllocated: false, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    /// <summary>
    /// Whole clusters become zero-flag entries (or unallocated when nothing below could show through); partial
    /// clusters are written with zeros, or for a discard left alone.
    /// </summary>
    private async ValueTask ZeroOrDiscardLockedAsync(long offset, long length, bool discard, bool keepAllocated, CancellationToken cancellationToken)
    {
        ThrowIfMarkedCorrupt();
        long end = offset + length;
        long unit = ExtendedL2 ? 1L << SubclusterBits : ClusterSize;
        bool hasBacking = _backing is not null;
        if (!IsV3 && hasBacking && !discard)
        {
            // Version 2 has no zero flag and the backing file must stay hidden: zeros are written, as one write
            // per chunk (one allocation and flush per run of clusters, not per cluster).
            var zeros = new byte[Math.Min(end - offset, CopyOnReadChunk)];
            for (int n; offset < end; offset += n)
            {
                n = (int)Math.Min(zeros.Length, end - offset);
                await WriteLockedAsync(offset, zeros.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        while (offset < end)
        {
            long clusterStart = offset & ~((long)ClusterSize - 1);
            long clusterEnd = Math.Min(end, clusterStart + ClusterSize);
            bool whole = offset == clusterStart && (clusterEnd == clusterStart + ClusterSize || clusterEnd >= Length);
            long alignedStart = (offset + unit - 1) & ~(unit - 1);
            long alignedEnd = clusterEnd >= Length ? clusterEnd : clusterEnd & ~(unit - 1);
            if (!whole && !(ExtendedL2 && alignedStart < alignedEnd && IsV3))
            {
                if (!discard)
                {
                    await WriteLockedAsync(offset, new byte[clusterEnd - offset], cancellationToken).ConfigureAwait(false);
                }

                offset = clusterEnd;
                continue;
            }

            long l1Index = (clusterStart >> ClusterBits) >> L2Bits;
            int index = (int)((clusterStart >> ClusterBits) & ((1L << L2Bits) - 1));
            var l1 = new L1Entry(_l1[l1Index]);
            if (l1.L2Offset == 0 && !hasBacking && (discard || !IsV3 || !keepAllocated))
            {
                offset = clusterEnd; // nothing allocated, nothing below: already reads as zeros
                continue;
            }

            // Version 2 has no zero flag: without a backing file an unallocated cluster reads as zeros;
            // otherwise (or to keep the allocation) zeros are written.
            if (!IsV3 && whole && !hasBacking && !keepAllocated)
            {
                var (t2, t2Offset) = await GetWritableL2Async(l1Index, cancellationToken).ConfigureAwait(false);
                var previous = ReadEntry(t2, index);
                if (previous.Raw != 0)
                {
                    SetEntry(t2, index, new L2Entry(0), 0);
                    await WriteEntriesAsync(t2, t2Offset, index, 1, cancellationToken).ConfigureAwait(false);
                    await ReleaseAsync([previous], cancellationToken).ConfigureAwait(false);
                }

                offset = clusterEnd;
                continue;
            }

            if (!IsV3)
            {
                if (!discard)
                {
                    await WriteLockedAsync(offset, new byte[clusterEnd - offset], cancellationToken).ConfigureAwait(false);
                }

                offset = clusterEnd;
                continue;
            }

            var (table, tableOffset) = await GetWritableL2Async(l1Index, cancellationToken).ConfigureAwait(false);
            var old = ReadEntry(table, index);
            if (ExtendedL2 && !whole)
            {
                // Zero whole subclusters by their bits; the partial ends are written with zeros.
                if (offset < alignedStart && !discard)
                {
                    await WriteLockedAsync(offset, new byte[alignedStart - offset], cancellationToken).ConfigureAwait(false);
                }

                if (clusterEnd > alignedEnd && !discard)
                {
                    await WriteLockedAsync(alignedEnd, new byte[clusterEnd - alignedEnd], cancellationToken).ConfigureAwait(false);
                }

                old = ReadEntry(table, index);
                if (old.IsCompressed)
                {
                    if (!discard)
                    {
                        await WriteLockedAsync(alignedStart, new byte[alignedEnd - alignedStart], cancellationToken).ConfigureAwait(false);
                    }
                }
                else
                {
                    uint mask = 0;
                    for (long s = alignedStart - clusterStart; s < alignedEnd - clusterStart; s += unit)
                    {
                        mask |= 1u << (int)(s >> SubclusterBits);
                    }

                    ulong bitmap = (old.Bitmap & ~(ulong)mask) | (discard && !hasBacking ? 0 : (ulong)mask << 32);
                    SetEntry(table, index, new L2Entry(old.Raw), bitmap);
                    await WriteEntriesAsync(table, tableOffset, index, 1, cancellationToken).ConfigureAwait(false);
                }

                offset = clusterEnd;
                continue;
            }

            bool keep = keepAllocated && !old.IsCompressed && old.IsCopied && old.HostOffset != 0;
            L2Entry entry;
            ulong newBitmap = 0;
            if (ExtendedL2)
            {
                entry = keep ? new L2Entry(old.Raw & ~Qcow2Entries.ZeroFlag) : new L2Entry(0);
                newBitmap = discard && !hasBacking ? 0 : 0xFFFF_FFFFUL << 32;
            }
            else if (discard && !hasBacking)
            {
                entry = new L2Entry(0);
            }
            else
            {
                entry = keep ? L2Entry.Standard(old.HostOffset, copied: true, zero: true) : L2Entry.Standard(0, copied: false, zero: true);
            }

            SetEntry(table, index, entry, newBitmap);
            await WriteEntriesAsync(table, tableOffset, index, 1, cancellationToken).ConfigureAwait(false);
            if (!keep)
            {
                await ReleaseAsync([old], cancellationToken).ConfigureAwait(false);
            }

            offset = clusterEnd;
        }
    }

    /// <summary>
    /// Writes one whole guest cluster compressed (for <c>convert -c</c>). Data that does not shrink is written
    /// uncompressed. Compressed clusters are packed one after another, sharing host clusters.
    /// </summary>
    public async ValueTask WriteCompressedAsync(long clusterIndex, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        if (_writableFile is null)
        {
            throw new ReadOnlyDeviceException("qcow2");
        }

        long guest = clusterIndex << ClusterBits;
        if (clusterIndex < 0 || guest >= Length || data.Length > ClusterSize || (data.Length < ClusterSize && guest + data.Length < Length))
        {
            throw new ArgumentOutOfRangeException(nameof(clusterIndex), $"qcow2: compressed writes take one whole cluster ({ClusterSize} bytes) inside the image");
        }

        var cluster = new byte[ClusterSize];
        data.CopyTo(cluster);
        var compressed = ClusterCompression.Compress(Header.CompressionType, cluster);
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfMarkedCorrupt();
            if (compressed is null)
            {
                await WriteLockedAsync(guest, cluster.AsMemory(0, (int)Math.Min(ClusterSize, Length - guest)), cancellationToken).ConfigureAwait(false);
                return;
            }

            long host = await AllocateBytesAsync(compressed.Length, cancellationToken).ConfigureAwait(false);
            await _writableFile.WriteAtAsync(host, compressed, cancellationToken).ConfigureAwait(false);
            await BarrierAsync(cancellationToken).ConfigureAwait(false); // refcounts and data before the entry
            var (table, tableOffset) = await GetWritableL2Async(clusterIndex >> L2Bits, cancellationToken).ConfigureAwait(false);
            int index = (int)(clusterIndex & ((1L << L2Bits) - 1));
            var old = ReadEntry(table, index);
            SetEntry(table, index, new L2Entry(CompressedDescriptor.Encode(host, compressed.Length, ClusterBits)), 0);
            await WriteEntriesAsync(table, tableOffset, index, 1, cancellationToken).ConfigureAwait(false);
            await ReleaseAsync([old], cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    /// <summary>Byte-granular allocation for compressed data: the rest of the last host cluster used, else new clusters.</summary>
    private async ValueTask<long> AllocateBytesAsync(int length, CancellationToken cancellationToken)
    {
        long cursor = _compressedCursor;
        long cursorCluster = cursor >> ClusterBits;
        // Share the last cluster while it has room and its refcount can count one more user (narrow refcounts
        // fill up); data that does not fit runs on into the following clusters when they are free, as QEMU packs it.
        ulong users = cursor == 0 ? 0 : await Refcounts.GetAsync(cursorCluster, cancellationToken).ConfigureAwait(false);
        long within = cursor & (ClusterSize - 1);
        if (cursor != 0 && within != 0 && users > 0 && users < Refcounts.MaxRefcount)
        {
            long overflow = within + length - ClusterSize;
            long extra = overflow <= 0 ? 0 : (overflow + ClusterSize - 1) / ClusterSize;
            if (extra == 0 || await Refcounts.TryAllocateAtAsync(cursorCluster + 1, extra, "compressed data", cancellationToken).ConfigureAwait(false))
            {
                await Refcounts.UpdateAsync(cursorCluster, 1, 1, cancellationToken).ConfigureAwait(false);
                _compressedCursor = cursor + length;
                return cursor;
            }
        }

        long clusters = (length + ClusterSize - 1) / ClusterSize;
        long host = await Refcounts.AllocateAsync(clusters, "compressed data", cancellationToken).ConfigureAwait(false);
        _compressedCursor = host + length;
        return host;
    }

    /// <summary>The L2 table for <paramref name="l1Index"/>, allocated (or copied, when shared with a snapshot) first if needed.</summary>
    private async ValueTask<(ulong[] Table, long Offset)> GetWritableL2Async(long l1Index, CancellationToken cancellationToken)
    {
        if (l1Index >= _l1.Length)
        {
            throw new ImageFormatException($"qcow2: L1 index {l1Index} is beyond the L1 table ({_l1.Length} entries)");
        }

        var l1 = new L1Entry(_l1[l1Index]);
        if (l1.L2Offset != 0 && l1.IsCopied)
        {
            await GuardAsync(l1.L2Offset, ClusterSize, "an L2 table", cancellationToken, ownL2Table: l1.L2Offset).ConfigureAwait(false);
            return (await GetL2TableAsync(l1.L2Offset, l1Index, cancellationToken).ConfigureAwait(false), l1.L2Offset);
        }

        ulong[] table;
        byte[] bytes = new byte[ClusterSize];
        if (l1.L2Offset == 0)
        {
            table = new ulong[ClusterSize / 8];
        }
        else
        {
            table = (ulong[])(await GetL2TableAsync(l1.L2Offset, l1Index, cancellationToken).ConfigureAwait(false)).Clone();
            for (int i = 0; i < table.Length; i++)
            {
                BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(i * 8), table[i]);
            }
        }

        long offset = await Refcounts.AllocateAsync(1, "a new L2 table", cancellationToken).ConfigureAwait(false);
        await _writableFile!.WriteAtAsync(offset, bytes, cancellationToken).ConfigureAwait(false);
        await BarrierAsync(cancellationToken).ConfigureAwait(false); // the table and its refcount before the L1 entry
        _l2Cache.Put(offset, table);
        _activeL2Tables!.Add(offset);
        var entry = new byte[8];
        ulong raw = L1Entry.Create(offset, copied: true).Raw;
        BinaryPrimitives.WriteUInt64BigEndian(entry, raw);
        await _writableFile.WriteAtAsync((long)Header.L1TableOffset + (l1Index * 8), entry, cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref _l1[l1Index], raw);
        if (l1.L2Offset != 0)
        {
            await BarrierAsync(cancellationToken).ConfigureAwait(false); // the L1 entry leaves the old table before its refcount drops
            _activeL2Tables.Remove(l1.L2Offset);
            await Refcounts.UpdateAsync(l1.L2Offset >> ClusterBits, 1, -1, cancellationToken).ConfigureAwait(false);
        }

        return (table, offset);
    }

    private L2Entry ReadEntry(ulong[] table, int index)
        => ExtendedL2 ? new L2Entry(table[index * 2], table[(index * 2) + 1]) : new L2Entry(table[index]);

    private void SetEntry(ulong[] table, int index, L2Entry entry, ulong bitmap)
    {
        if (ExtendedL2)
        {
            Volatile.Write(ref table[(index * 2) + 1], bitmap);
            Volatile.Write(ref table[index * 2], entry.Raw);
        }
        else
        {
            Volatile.Write(ref table[index], entry.Raw);
        }
    }

    private async ValueTask WriteEntriesAsync(ulong[] table, long tableOffset, int index, int count, CancellationToken cancellationToken)
    {
        int words = count * EntryWords;
        int firstWord = index * EntryWords;
        var bytes = new byte[words * 8];
        for (int i = 0; i < words; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(i * 8), table[firstWord + i]);
        }

        await _writableFile!.WriteAtAsync(tableOffset + (firstWord * 8L), bytes, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Drops the references old L2 entries held, once the entries that replaced them are durable.</summary>
    private async ValueTask ReleaseAsync(IReadOnlyList<L2Entry> old, CancellationToken cancellationToken)
    {
        if (!old.Any(e => e.IsCompressed || e.HostOffset != 0))
        {
            return;
        }

        await BarrierAsync(cancellationToken).ConfigureAwait(false);
        foreach (var e in old)
        {
            if (e.IsCompressed)
            {
                var d = CompressedDescriptor.Decode(e.Raw, ClusterBits);
                var (first, last) = d.HostClusters(ClusterBits);
                await Refcounts.UpdateAsync(first, last - first + 1, -1, cancellationToken).ConfigureAwait(false);
            }
            else if (e.HostOffset != 0)
            {
                await Refcounts.UpdateAsync(e.HostOffset >> ClusterBits, 1, -1, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
