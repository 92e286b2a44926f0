using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Consistency check like <c>qemu-img check</c>: rebuilds every cluster's refcount from the metadata (header,
/// L1/L2 tables and data of the active state and of each snapshot, snapshot table, refcount table and blocks),
/// compares with the stored refcounts (more stored = leak, fewer = corruption), checks COPIED flags, and
/// optionally repairs leaks (and corruptions it can fix by raising refcounts or fixing flags).
/// </summary>
public sealed class Qcow2Checker
{
    private readonly IBlockDevice _file;
    private readonly Qcow2Header _h;
    private readonly HeaderExtension? _bitmaps;
    private readonly long _cs;
    private readonly int _l2Bits;
    private readonly bool _extended;
    private readonly List<string> _messages = [];
    private uint[] _computed = [];
    private int _corruptions;
    private long _allocated, _fragmented, _compressed, _nextContiguous;

    private Qcow2Checker(IBlockDevice file, Qcow2HeaderCluster hc)
    {
        _file = file;
        _h = hc.Header;
        Qcow2Header header = hc.Header;
        // Bitmaps count only while the autoclear bit says they are consistent (otherwise QEMU drops them).
        _bitmaps = (header.AutoclearFeatures & Qcow2Features.BitmapsConsistent) != 0
            ? hc.OtherExtensions.FirstOrDefault(e => e.Type == HeaderExtension.Bitmaps)
            : null;
        _cs = header.ClusterSize;
        _extended = header.HasExtendedL2;
        _l2Bits = header.ClusterBits - (_extended ? 4 : 3);
    }

    /// <summary>Checks the qcow2 image in <paramref name="file"/> (its refcounts against its metadata) and repairs what <paramref name="repair"/> allows.</summary>
    /// <param name="file">the image file (not a format node), opened writable to repair</param>
    /// <param name="repair">null, "leaks" or "all"; repair needs a writable, growable host file (<see cref="IGrowableFile"/>).</param>
    public static async ValueTask<Qcow2CheckResult> CheckAsync(IBlockDevice file, string? repair, CancellationToken cancellationToken)
    {
        if (repair is not (null or "leaks" or "all"))
        {
            throw new OptionException($"check: -r '{repair}' is not allowed; use leaks or all");
        }

        var head = new byte[(int)Math.Min(file.Length, 2 * 1024 * 1024)];
        await file.ReadAsync(0, head, cancellationToken).ConfigureAwait(false);
        if (!Qcow2HeaderCluster.TryRead(head, out var hc, out string? error))
        {
            throw new ImageFormatException("qcow2: " + error);
        }

        Qcow2Image.ThrowIfUnsupported(hc);
        var first = await new Qcow2Checker(file, hc).RunAsync(cancellationToken).ConfigureAwait(false);
        if (repair is null || (first.Leaks == 0 && first.Corruptions == 0))
        {
            return first;
        }

        if (file is not IGrowableFile { Info.CanWrite: true } writable)
        {
            throw new UrlDiskException("check: repairing needs the image opened for writing (a local file)");
        }

        await RepairAsync(writable, hc, first, repair == "all", cancellationToken).ConfigureAwait(false);
        var after = await new Qcow2Checker(file, hc).RunAsync(cancellationToken).ConfigureAwait(false);
        return after with
        {
            LeaksFixed = Math.Max(0, first.Leaks - after.Leaks),
            CorruptionsFixed = Math.Max(0, first.Corruptions - after.Corruptions),
            Messages = first.Messages,
        };
    }

    private async ValueTask<Qcow2CheckResult> RunAsync(CancellationToken ct)
    {
        long fileClusters = (_file.Length + _cs - 1) / _cs;
        _computed = new uint[fileClusters];
        Reference(0, _cs, "header");

        // Active L1/L2 tables and data; fragmentation and allocation figures come from these.
        var active = await TraverseL1Async((long)_h.L1TableOffset, _h.L1Size, "active L1", countStats: true, ct).ConfigureAwait(false);

        // Snapshots.
        IReadOnlyList<SnapshotEntry> snapshots = [];
        if (_h.SnapshotCount > 0)
        {
            try
            {
                snapshots = await Qcow2Image.ReadSnapshotsAsync(_file, _h, ct).ConfigureAwait(false);
                Reference((long)_h.SnapshotsOffset, snapshots.Sum(s => (long)s.StoredLength), "snapshot table");
            }
            catch (ImageFormatException e)
            {
                Corrupt(e.Message);
            }
        }

        foreach (var s in snapshots)
        {
            if (s.L1Offset <= 0 || s.L1Offset % _cs != 0 || s.L1Size > 4 * 1024 * 1024)
            {
                Corrupt($"ERROR snapshot '{s.Id}' has an invalid L1 table (offset {s.L1Offset}, {s.L1Size} entries)");
                continue;
            }

            await TraverseL1Async(s.L1Offset, s.L1Size, $"snapshot '{s.Id}' L1", countStats: false, ct).ConfigureAwait(false);
        }

        if (_bitmaps is not null)
        {
            await ReferenceBitmapsAsync(_bitmaps.Data, ct).ConfigureAwait(false);
        }

        // Refcount structures.
        long tableOffset = (long)_h.RefcountTableOffset;
        long tableBytes = _h.RefcountTableClusters * _cs;
        var table = Array.Empty<ulong>();
        if (tableOffset < 0 || tableOffset % _cs != 0 || tableBytes > 64L * 1024 * 1024 || tableOffset > _file.Length - tableBytes)
        {
            Corrupt($"ERROR refcount table at offset {tableOffset} ({tableBytes} bytes) is invalid");
        }
        else
        {
            Reference(tableOffset, tableBytes, "refcount table");
            var bytes = new byte[tableBytes];
            await _file.ReadAsync(tableOffset, bytes, ct).ConfigureAwait(false);
            table = new ulong[bytes.Length / 8];
            for (int i = 0; i < table.Length; i++)
            {
                table[i] = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(i * 8));
                long block = (long)(table[i] & ~Qcow2Entries.RefcountTableReservedMask);
                if ((table[i] & Qcow2Entries.RefcountTableReservedMask) != 0)
                {
                    Corrupt($"ERROR refcount table entry {i} has reserved bits set");
                }

                if (block == 0)
                {
                    continue;
                }

                if (block < 0 || block % _cs != 0 || block > _file.Length - _cs)
                {
                    Corrupt($"ERROR refcount block {i} at offset {block} is unaligned or outside the image");
                    table[i] = 0;
                    continue;
                }

                Reference(block, _cs, $"refcount block {i}");
            }
        }

        // Compare with what is stored.
        int order = _h.RefcountOrder;
        long perBlock = (_cs * 8) >> order;
        int leaks = 0;
        long highest = -1;
        var block2 = new byte[_cs];
        long loadedBlock = -1;
        // As qemu-img: clusters past the end of the file are not compared.
        long limit = _computed.Length;
        for (long c = 0; c < limit; c++)
        {
            long b = c / perBlock;
            if (c >= _computed.Length && (b >= table.Length || table[b] == 0))
            {
                c = ((b + 1) * perBlock) - 1; // no block, nothing referenced out here
                continue;
            }

            ulong stored = 0;
            if (b < table.Length && table[b] != 0)
            {
                if (loadedBlock != b)
                {
                    await _file.ReadAsync((long)(table[b] & ~Qcow2Entries.RefcountTableReservedMask), block2, ct).ConfigureAwait(false);
                    loadedBlock = b;
                }

                stored = RefcountBlock.Get(block2, order, c % perBlock);
            }

            ulong computed = c < _computed.Length ? _computed[c] : 0;
            if (stored != 0 || computed != 0)
            {
                highest = c;
            }

            if (stored > computed)
            {
                leaks++;
                _messages.Add($"Leaked cluster {c} refcount={stored} reference={computed}");
            }
            else if (stored < computed)
            {
                Corrupt($"ERROR cluster {c} refcount={stored} reference={computed}");
            }

            ref ulong slot = ref CollectionsMarshal.GetValueRefOrNullRef(_storedRefcounts, c);
            if (!Unsafe.IsNullRef(ref slot))
            {
                slot = stored;
            }
        }

        // As qemu-img, after the refcount comparison: COPIED must be set exactly where the stored refcount is 1,
        // whether or not that refcount also differs from the references (a leak of 2 on a COPIED cluster is both).
        foreach (var (l2Table, l1Index, raw, cluster) in _copiedChecks)
        {
            ulong stored = _storedRefcounts[cluster];
            if ((stored == 1) != ((raw & Qcow2Entries.Copied) != 0))
            {
                Corrupt(l2Table
                    ? $"ERROR OFLAG_COPIED L2 cluster: l1_index={l1Index} l1_entry={raw:x} refcount={stored}"
                    : $"ERROR OFLAG_COPIED data cluster: l2_entry={raw:x} refcount={stored}");
            }
        }

        return new Qcow2CheckResult
        {
            Corruptions = _corruptions,
            Leaks = leaks,
            ImageEndOffset = (highest + 1) * _cs,
            TotalClusters = (long)((_h.Size + (ulong)_cs - 1) / (ulong)_cs),
            AllocatedClusters = _allocated,
            FragmentedClusters = _fragmented,
            CompressedClusters = _compressed,
            Messages = _messages,
        };
    }

    /// <summary>
    /// The bitmap directory (extension: <c>u32 count, u32 reserved, u64 dir_size, u64 dir_offset</c>), each
    /// bitmap's table and the data clusters the tables point at.
    /// </summary>
    private async ValueTask ReferenceBitmapsAsync(byte[] extension, CancellationToken ct)
    {
        if (extension.Length < 24)
        {
            Corrupt("ERROR bitmaps extension is truncated");
            return;
        }

        uint count = BinaryPrimitives.ReadUInt32BigEndian(extension);
        long dirSize = (long)Math.Min(BinaryPrimitives.ReadUInt64BigEndian(extension.AsSpan(8)), 64UL * 1024 * 1024);
        long dirOffset = (long)Math.Min(BinaryPrimitives.ReadUInt64BigEndian(extension.AsSpan(16)), long.MaxValue);
        if (dirOffset % _cs != 0 || dirOffset > _file.Length - dirSize)
        {
            Corrupt($"ERROR bitmap directory at offset {dirOffset} ({dirSize} bytes) is unaligned or outside the image");
            return;
        }

        Reference(dirOffset, dirSize, "bitmap directory");
        var dir = new byte[dirSize];
        await _file.ReadAsync(dirOffset, dir, ct).ConfigureAwait(false);
        int pos = 0;
        for (uint i = 0; i < count && pos + 24 <= dir.Length; i++)
        {
            long tableOffset = (long)(BinaryPrimitives.ReadUInt64BigEndian(dir.AsSpan(pos)) & Qcow2Entries.OffsetMask);
            uint tableSize = BinaryPrimitives.ReadUInt32BigEndian(dir.AsSpan(pos + 8));
            int nameSize = BinaryPrimitives.ReadUInt16BigEndian(dir.AsSpan(pos + 18));
            uint extraSize = BinaryPrimitives.ReadUInt32BigEndian(dir.AsSpan(pos + 20));
            pos += (int)Math.Min(((24L + extraSize + nameSize + 7) & ~7L), dir.Length);
            if (tableOffset == 0 || tableOffset % _cs != 0 || tableSize > 1024 * 1024 || tableOffset > _file.Length - (tableSize * 8L))
            {
                Corrupt($"ERROR bitmap {i}: table at offset {tableOffset} ({tableSize} entries) is invalid");
                continue;
            }

            Reference(tableOffset, tableSize * 8L, $"bitmap {i} table");
            var table = new byte[tableSize * 8L];
            await _file.ReadAsync(tableOffset, table, ct).ConfigureAwait(false);
            for (int j = 0; j < tableSize; j++)
            {
                long data = (long)(BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(j * 8)) & Qcow2Entries.OffsetMask);
                if (data != 0)
                {
                    Reference(data, _cs, $"bitmap {i} data");
                }
            }
        }
    }

    /// <summary>Active L1 and L2 entries (in table order) whose COPIED flag is checked against the stored refcount.</summary>
    private readonly List<(bool L2Table, int L1Index, ulong Raw, long Cluster)> _copiedChecks = [];

    /// <summary>Stored refcounts of the clusters in <see cref="_copiedChecks"/>, filled by the comparison.</summary>
    private readonly Dictionary<long, ulong> _storedRefcounts = [];

    private void CheckCopiedLater(bool l2Table, int l1Index, ulong raw, long cluster)
    {
        if (cluster < _computed.Length)
        {
            _copiedChecks.Add((l2Table, l1Index, raw, cluster));
            _storedRefcounts[cluster] = 0;
        }
    }

    private async ValueTask<bool> TraverseL1Async(long l1Offset, uint l1Size, string what, bool countStats, CancellationToken ct)
    {
        if (l1Offset < 0 || l1Offset % _cs != 0 || l1Offset > _file.Length - (l1Size * 8L))
        {
            Corrupt($"ERROR {what} table at offset {l1Offset} ({l1Size} entries) is unaligned or outside the image");
            return false;
        }

        Reference(l1Offset, l1Size * 8L, what);
        var l1 = await Qcow2Image.ReadL1Async(_file, l1Offset, (int)l1Size, ct).ConfigureAwait(false);
        var l2 = new byte[_cs];
        for (int i = 0; i < l1.Length; i++)
        {
            var e = new L1Entry(l1[i]);
            if (e.HasReservedBits)
            {
                Corrupt($"ERROR {what} entry {i} has reserved bits set");
            }

            if (e.L2Offset == 0)
            {
                continue;
            }

            if (e.L2Offset % _cs != 0 || e.L2Offset + _cs > _file.Length)
            {
                Corrupt($"ERROR {what} entry {i}: L2 table offset {e.L2Offset} is unaligned or outside the image");
                continue;
            }

            Reference(e.L2Offset, _cs, $"L2 table (L1 entry {i})");
            if (countStats)
            {
                CheckCopiedLater(l2Table: true, i, l1[i], e.L2Offset / _cs);
            }

            await _file.ReadAsync(e.L2Offset, l2, ct).ConfigureAwait(false);
            int entrySize = _extended ? 16 : 8;
            for (int j = 0; j < _cs / entrySize; j++)
            {
                ulong raw = BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(j * entrySize));
                ulong bitmap = _extended ? BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan((j * entrySize) + 8)) : 0;
                CheckL2Entry(new L2Entry(raw, bitmap), e.L2Offset + (j * entrySize), countStats);
            }
        }

        return true;
    }

    private void CheckL2Entry(L2Entry entry, long at, bool countStats)
    {
        if (entry.IsCompressed)
        {
            var d = CompressedDescriptor.Decode(entry.Raw, _h.ClusterBits);
            Reference(d.HostOffset, d.MaxCompressedLength, $"compressed cluster (L2 entry at {at})");
            if (countStats)
            {
                // As qemu-img counts them: a compressed cluster is fragmented by nature (adjacent ones share sectors
                // and are read again), and it leaves the contiguity expected of the next data cluster unchanged.
                _allocated++;
                _compressed++;
                _fragmented++;
            }

            return;
        }

        if (entry.HasReservedBits || (_extended && (entry.Raw & Qcow2Entries.ZeroFlag) != 0))
        {
            Corrupt($"ERROR L2 entry at offset {at} has reserved bits set");
        }

        long host = entry.HostOffset;
        if (_extended && (entry.AllocatedSubclusters & entry.ZeroSubclusters) != 0)
        {
            Corrupt($"ERROR L2 entry at offset {at}: a subcluster is marked both allocated and zero");
        }

        if (host == 0 && _extended && entry.AllocatedSubclusters != 0)
        {
            Corrupt($"ERROR L2 entry at offset {at}: allocated subclusters without a host cluster");
        }

        if (host == 0)
        {
            return;
        }

        if (host % _cs != 0)
        {
            Corrupt($"ERROR L2 entry at offset {at}: host offset {host} is not cluster aligned (L2 entry corrupted)");
            return;
        }

        Reference(host, _cs, $"data cluster (L2 entry at {at})");
        if (countStats)
        {
            _allocated++;
            CheckCopiedLater(l2Table: false, 0, entry.Raw, host / _cs);
            if (_nextContiguous != 0 && host != _nextContiguous)
            {
                _fragmented++;
            }

            _nextContiguous = host + _cs;
        }
    }

    private void Reference(long offset, long length, string what)
    {
        if (length <= 0)
        {
            return;
        }

        long first = offset / _cs;
        long last = (offset + length - 1) / _cs;
        for (long c = first; c <= last; c++)
        {
            if (c < 0 || c >= _computed.Length)
            {
                Corrupt($"ERROR {what}: cluster {c} is outside the image");
                return;
            }

            if (_computed[c] < uint.MaxValue)
            {
                _computed[c]++;
            }
        }
    }

    private void Corrupt(string message)
    {
        _corruptions++;
        _messages.Add(message);
    }

    /// <summary>Sets stored refcounts to the computed ones (down for leaks; up too with <paramref name="all"/>) and fixes COPIED flags.</summary>
    private static async ValueTask RepairAsync(IGrowableFile file, Qcow2HeaderCluster hc, Qcow2CheckResult found, bool all, CancellationToken ct)
    {
        var h = hc.Header;
        var checker = new Qcow2Checker(file, hc);
        await checker.RunAsync(ct).ConfigureAwait(false);
        var refcounts = await Qcow2Refcounts.LoadAsync(new FileHostFile(file), h, (_, _, _) => throw new UrlDiskException("check: repair cannot grow the refcount table"), guard: null, orderWrites: false, ct).ConfigureAwait(false);
        for (long c = 0; c < checker._computed.Length; c++)
        {
            ulong stored = await refcounts.GetAsync(c, ct).ConfigureAwait(false);
            ulong computed = c < checker._computed.Length ? checker._computed[c] : 0;
            if (stored > computed || (all && stored < computed))
            {
                await refcounts.SetAsync(c, computed, ct).ConfigureAwait(false);
            }
        }

        if (all && found.Corruptions > 0)
        {
            await FixCopiedFlagsAsync(file, h, refcounts, ct).ConfigureAwait(false);
        }

        await file.FlushAsync(ct).ConfigureAwait(false);
    }

    private static async ValueTask FixCopiedFlagsAsync(IGrowableFile file, Qcow2Header h, Qcow2Refcounts refcounts, CancellationToken ct)
    {
        long cs = h.ClusterSize;
        var l1 = await Qcow2Image.ReadL1Async(file, (long)h.L1TableOffset, (int)h.L1Size, ct).ConfigureAwait(false);
        int entrySize = h.HasExtendedL2 ? 16 : 8;
        var entry = new byte[8];
        for (int i = 0; i < l1.Length; i++)
        {
            var e = new L1Entry(l1[i]);
            if (e.L2Offset == 0 || e.L2Offset % cs != 0 || e.L2Offset + cs > file.Length)
            {
                continue;
            }

            bool copied = await refcounts.GetAsync(e.L2Offset / cs, ct).ConfigureAwait(false) == 1;
            if (copied != e.IsCopied)
            {
                BinaryPrimitives.WriteUInt64BigEndian(entry, copied ? l1[i] | Qcow2Entries.Copied : l1[i] & ~Qcow2Entries.Copied);
                await file.WriteAtAsync((long)h.L1TableOffset + (i * 8L), entry, ct).ConfigureAwait(false);
            }

            var l2 = new byte[cs];
            await file.ReadAsync(e.L2Offset, l2, ct).ConfigureAwait(false);
            for (int j = 0; j < cs / entrySize; j++)
            {
                ulong raw = BinaryPrimitives.ReadUInt64BigEndian(l2.AsSpan(j * entrySize));
                var l2e = new L2Entry(raw);
                if (l2e.IsCompressed || l2e.HostOffset == 0 || l2e.HostOffset % cs != 0)
                {
                    continue;
                }

                bool c = await refcounts.GetAsync(l2e.HostOffset / cs, ct).ConfigureAwait(false) == 1;
                if (c != l2e.IsCopied)
                {
                    BinaryPrimitives.WriteUInt64BigEndian(entry, c ? raw | Qcow2Entries.Copied : raw & ~Qcow2Entries.Copied);
                    await file.WriteAtAsync(e.L2Offset + (j * (long)entrySize), entry, ct).ConfigureAwait(false);
                }
            }
        }
    }
}
