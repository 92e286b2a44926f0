using System.Buffers.Binary;
using UrlDisk.Sources.File;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Internal snapshots of a local qcow2 file (qemu-img snapshot -c/-a/-d), edited while no writer has the image
/// open. A cluster's refcount counts every path to it from an L1 table (the active one and each snapshot's), so
/// creating a snapshot adds one to every L2 table and data cluster the active L1 reaches, and clears the COPIED
/// flags of what became shared: <see cref="Qcow2Image"/>'s writer then copies those clusters before writing.
/// Changes are ordered with flushes so that a crash leaves at worst leaked clusters.
/// </summary>
internal sealed class Qcow2SnapshotEditor
{
    private readonly IBlockDevice _device;
    private readonly IHostFile _file;
    private readonly Qcow2Refcounts _refcounts;
    private readonly List<SnapshotEntry> _snapshots;
    private Qcow2Header _header;
    private ulong[] _l1;

    private Qcow2SnapshotEditor(FileSource source, IHostFile file, Qcow2Header header, ulong[] l1, List<SnapshotEntry> snapshots, Qcow2Refcounts refcounts)
    {
        _device = source;
        _file = file;
        _header = header;
        _l1 = l1;
        _snapshots = snapshots;
        _refcounts = refcounts;
    }

    public IReadOnlyList<SnapshotEntry> Snapshots => _snapshots;

    /// <summary>The image's current virtual size.</summary>
    public long VirtualSize => (long)_header.Size;

    private int ClusterBits => _header.ClusterBits;

    private long ClusterSize => _header.ClusterSize;

    /// <summary>Opens a writable local qcow2 file; refuses images whose metadata is not consistent (they must be repaired first).</summary>
    public static async ValueTask<Qcow2SnapshotEditor> OpenAsync(FileSource source, CancellationToken cancellationToken)
    {
        var file = new FileHostFile(source);
        var head = new byte[(int)Math.Min(source.Length, 2 * 1024 * 1024)];
        await source.ReadAsync(0, head, cancellationToken).ConfigureAwait(false);
        if (!Qcow2Header.TryRead(head, out var header, out string? error)
            || !Qcow2HeaderCluster.TryRead(head.AsSpan(0, (int)Math.Min(head.Length, header.ClusterSize)), out var hc, out error))
        {
            throw new ImageFormatException("qcow2: " + error);
        }

        Qcow2Image.ThrowIfUnsupported(hc);
        if (header.IsCorrupt || header.IsDirty)
        {
            throw new ImageFormatException($"qcow2: the image is marked {(header.IsCorrupt ? "corrupt" : "dirty")}; repair it with 'urldisk check -r all' first");
        }

        var check = await Qcow2Checker.CheckAsync(source, null, cancellationToken).ConfigureAwait(false);
        if (check.Corruptions > 0)
        {
            throw new ImageFormatException($"qcow2: the image has {check.Corruptions} errors (see 'urldisk check'); repair it with 'urldisk check -r all' first");
        }

        var l1 = await Qcow2Image.ReadL1Async(source, (long)header.L1TableOffset, (int)header.L1Size, cancellationToken).ConfigureAwait(false);
        var snapshots = (await Qcow2Image.ReadSnapshotsAsync(source, header, cancellationToken).ConfigureAwait(false)).ToList();
        Qcow2SnapshotEditor? editor = null;
        var refcounts = await Qcow2Refcounts.LoadAsync(file, header, (offset, clusters, ct) => editor!.MoveRefcountTableAsync(offset, clusters, ct), null, orderWrites: true, cancellationToken).ConfigureAwait(false);
        editor = new Qcow2SnapshotEditor(source, file, header, l1, snapshots, refcounts);
        return editor;
    }

    /// <summary>The snapshot named <paramref name="idOrName"/>: by ID first, then by name (qemu-img -a's rule).</summary>
    public SnapshotEntry? FindByIdOrName(string idOrName)
        => _snapshots.FirstOrDefault(s => s.Id == idOrName) ?? _snapshots.FirstOrDefault(s => s.Name == idOrName);

    /// <summary>Creates a snapshot of the current state; returns it.</summary>
    public async ValueTask<SnapshotEntry> CreateAsync(string name, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (_snapshots.Count >= 65536)
        {
            throw new UrlDiskException("qcow2: the image already has 65536 snapshots, the most qcow2 allows");
        }

        // 1. Everything the active L1 reaches gains a user, then loses its COPIED flag: from here on a writer
        //    copies before writing, so the snapshot's data cannot change whatever happens next.
        var deltas = new SortedDictionary<long, long>();
        await CountTreeAsync(_l1, 1, deltas, cancellationToken).ConfigureAwait(false);
        await ApplyDeltasAsync(deltas, cancellationToken).ConfigureAwait(false);
        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
        await UpdateCopiedFlagsAsync(cancellationToken).ConfigureAwait(false);
        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);

        // 2. The snapshot's own L1 table.
        var l1Bytes = new byte[Math.Max(8, _l1.Length * 8)];
        for (int i = 0; i < _l1.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(l1Bytes.AsSpan(i * 8), _l1[i] & ~Qcow2Entries.Copied);
        }

        long l1Offset = await _refcounts.AllocateAsync(ClustersFor(l1Bytes.Length), "a snapshot L1 table", cancellationToken).ConfigureAwait(false);
        await _file.WriteAtAsync(l1Offset, l1Bytes.AsMemory(0, _l1.Length * 8), cancellationToken).ConfigureAwait(false);

        // 3. A new snapshot table holding it, then the header points at that table.
        long nextId = 1 + _snapshots.Select(s => long.TryParse(s.Id, out long n) ? n : 0).DefaultIfEmpty(0).Max();
        var extra = new byte[24];
        BinaryPrimitives.WriteUInt64BigEndian(extra.AsSpan(8), _header.Size);
        var entry = new SnapshotEntry
        {
            L1Offset = l1Offset,
            L1Size = (uint)_l1.Length,
            Id = nextId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            Name = name,
            DateSeconds = (uint)now.ToUnixTimeSeconds(),
            DateNanoseconds = (uint)(now.UtcTicks % TimeSpan.TicksPerSecond * 100),
            ExtraData = extra,
        };
        await WriteSnapshotTableAsync([.. _snapshots, entry], cancellationToken).ConfigureAwait(false);
        return entry;
    }

    /// <summary>Deletes the first snapshot named <paramref name="name"/> (qemu-img -d matches names only); false when none is.</summary>
    public async ValueTask<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        var entry = _snapshots.FirstOrDefault(s => s.Name == name);
        if (entry is null)
        {
            return false;
        }

        var l1 = await Qcow2Image.ReadL1Async(_device, entry.L1Offset, (int)entry.L1Size, cancellationToken).ConfigureAwait(false);

        // The table without it first: once nothing points at its L1 table, the references it held can drop.
        await WriteSnapshotTableAsync(_snapshots.Where(s => !ReferenceEquals(s, entry)).ToList(), cancellationToken).ConfigureAwait(false);
        var deltas = new SortedDictionary<long, long>();
        await CountTreeAsync(l1, -1, deltas, cancellationToken).ConfigureAwait(false);
        AddRange(deltas, entry.L1Offset >> ClusterBits, ClustersFor(entry.L1Size * 8L), -1);
        await ApplyDeltasAsync(deltas, cancellationToken).ConfigureAwait(false);
        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);

        // Clusters the active state alone uses again may be written in place.
        await UpdateCopiedFlagsAsync(cancellationToken).ConfigureAwait(false);
        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Makes the snapshot's state the current one (the current state is discarded).</summary>
    public async ValueTask ApplyAsync(SnapshotEntry entry, CancellationToken cancellationToken)
    {
        if (entry.DiskSize is { } size && size != _header.Size)
        {
            throw new UrlDiskException($"qcow2: snapshot '{entry.Name}' was taken at a virtual size of {size} bytes and the image is now {_header.Size} bytes; resize the image to {size} bytes first");
        }

        var snapshotL1 = await Qcow2Image.ReadL1Async(_device, entry.L1Offset, (int)entry.L1Size, cancellationToken).ConfigureAwait(false);
        if (snapshotL1.Skip(_l1.Length).Any(e => e != 0))
        {
            throw new ImageFormatException($"qcow2: snapshot '{entry.Name}' has an L1 table of {entry.L1Size} entries with tables past the image's {_l1.Length}");
        }

        // The snapshot's tree gains the active L1 as a user before the active L1 points at it; the old active
        // tree loses it after.
        var gains = new SortedDictionary<long, long>();
        await CountTreeAsync(snapshotL1, 1, gains, cancellationToken).ConfigureAwait(false);
        await ApplyDeltasAsync(gains, cancellationToken).ConfigureAwait(false);
        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);

        var old = _l1;
        var l1 = new ulong[_l1.Length];
        for (int i = 0; i < Math.Min(l1.Length, snapshotL1.Length); i++)
        {
            l1[i] = snapshotL1[i] & ~Qcow2Entries.Copied;
        }

        await WriteL1Async(l1, cancellationToken).ConfigureAwait(false);
        _l1 = l1;
        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);

        var losses = new SortedDictionary<long, long>();
        await CountTreeAsync(old, -1, losses, cancellationToken).ConfigureAwait(false);
        await ApplyDeltasAsync(losses, cancellationToken).ConfigureAwait(false);
        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
        await UpdateCopiedFlagsAsync(cancellationToken).ConfigureAwait(false);
        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private long ClustersFor(long bytes) => Math.Max(1, (bytes + ClusterSize - 1) >> ClusterBits);

    private static void AddRange(SortedDictionary<long, long> deltas, long first, long count, long delta)
    {
        for (long c = first; c < first + count; c++)
        {
            deltas[c] = deltas.GetValueOrDefault(c) + delta;
        }
    }

    /// <summary>Adds <paramref name="delta"/> for every L2 table an L1 table reaches and every cluster those tables use.</summary>
    private async ValueTask CountTreeAsync(ulong[] l1, long delta, SortedDictionary<long, long> deltas, CancellationToken cancellationToken)
    {
        int stride = _header.HasExtendedL2 ? 2 : 1;
        var table = new byte[ClusterSize];
        foreach (ulong raw in l1)
        {
            long l2 = new L1Entry(raw).L2Offset;
            if (l2 == 0)
            {
                continue;
            }

            AddRange(deltas, l2 >> ClusterBits, 1, delta);
            await _file.ReadAsync(l2, table, cancellationToken).ConfigureAwait(false);
            for (int i = 0; i < table.Length / 8; i += stride)
            {
                var e = new L2Entry(BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(i * 8)));
                if (e.IsCompressed)
                {
                    var (first, last) = CompressedDescriptor.Decode(e.Raw, ClusterBits).HostClusters(ClusterBits);
                    AddRange(deltas, first, last - first + 1, delta);
                }
                else if (e.HostOffset != 0)
                {
                    AddRange(deltas, e.HostOffset >> ClusterBits, 1, delta);
                }
            }
        }
    }

    /// <summary>Writes refcount changes, runs of neighbouring clusters with the same change at once.</summary>
    private async ValueTask ApplyDeltasAsync(SortedDictionary<long, long> deltas, CancellationToken cancellationToken)
    {
        long runStart = -1, runLength = 0, runDelta = 0;
        foreach (var (cluster, delta) in deltas)
        {
            if (delta == 0)
            {
                continue;
            }

            if (runLength > 0 && cluster == runStart + runLength && delta == runDelta)
            {
                runLength++;
                continue;
            }

            if (runLength > 0)
            {
                await _refcounts.UpdateAsync(runStart, runLength, runDelta, cancellationToken).ConfigureAwait(false);
            }

            (runStart, runLength, runDelta) = (cluster, 1, delta);
        }

        if (runLength > 0)
        {
            await _refcounts.UpdateAsync(runStart, runLength, runDelta, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sets the COPIED flag of each active L1 and L2 entry to "refcount is exactly one", as the format requires:
    /// the writer writes in place only where it is set.
    /// </summary>
    private async ValueTask UpdateCopiedFlagsAsync(CancellationToken cancellationToken)
    {
        int stride = _header.HasExtendedL2 ? 2 : 1;
        var table = new byte[ClusterSize];
        var l1 = (ulong[])_l1.Clone();
        for (int i = 0; i < l1.Length; i++)
        {
            long l2 = new L1Entry(l1[i]).L2Offset;
            if (l2 == 0)
            {
                continue;
            }

            bool owned = await _refcounts.GetAsync(l2 >> ClusterBits, cancellationToken).ConfigureAwait(false) == 1;
            l1[i] = owned ? l1[i] | Qcow2Entries.Copied : l1[i] & ~Qcow2Entries.Copied;
            await _file.ReadAsync(l2, table, cancellationToken).ConfigureAwait(false);
            bool changed = false;
            for (int j = 0; j < table.Length / 8; j += stride)
            {
                ulong raw = BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(j * 8));
                var e = new L2Entry(raw);
                if (e.IsCompressed || e.HostOffset == 0)
                {
                    continue;
                }

                bool single = await _refcounts.GetAsync(e.HostOffset >> ClusterBits, cancellationToken).ConfigureAwait(false) == 1;
                ulong updated = single ? raw | Qcow2Entries.Copied : raw & ~Qcow2Entries.Copied;
                if (updated != raw)
                {
                    BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(j * 8), updated);
                    changed = true;
                }
            }

            if (changed)
            {
                await _file.WriteAtAsync(l2, table, cancellationToken).ConfigureAwait(false);
            }
        }

        if (!l1.AsSpan().SequenceEqual(_l1))
        {
            await WriteL1Async(l1, cancellationToken).ConfigureAwait(false);
            _l1 = l1;
        }
    }

    private async ValueTask WriteL1Async(ulong[] l1, CancellationToken cancellationToken)
    {
        var bytes = new byte[l1.Length * 8];
        for (int i = 0; i < l1.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(i * 8), l1[i]);
        }

        await _file.WriteAtAsync((long)_header.L1TableOffset, bytes, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes <paramref name="snapshots"/> as a new table in new clusters, points the header at it, then frees the old table.</summary>
    private async ValueTask WriteSnapshotTableAsync(List<SnapshotEntry> snapshots, CancellationToken cancellationToken)
    {
        long newOffset = 0;
        if (snapshots.Count > 0)
        {
            var bytes = new byte[snapshots.Sum(s => s.StoredLength)];
            int pos = 0;
            foreach (var s in snapshots)
            {
                pos += s.Write(bytes.AsSpan(pos));
            }

            newOffset = await _refcounts.AllocateAsync(ClustersFor(bytes.Length), "a snapshot table", cancellationToken).ConfigureAwait(false);
            await _file.WriteAtAsync(newOffset, bytes, cancellationToken).ConfigureAwait(false);
        }

        await _file.FlushAsync(cancellationToken).ConfigureAwait(false); // the table and its refcounts before the header
        var fields = new byte[12];
        BinaryPrimitives.WriteUInt32BigEndian(fields, (uint)snapshots.Count);
        BinaryPrimitives.WriteUInt64BigEndian(fields.AsSpan(4), (ulong)newOffset);
        await _file.WriteAtAsync(60, fields, cancellationToken).ConfigureAwait(false);
        await _file.FlushAsync(cancellationToken).ConfigureAwait(false); // the header leaves the old table before it is freed
        long oldOffset = (long)_header.SnapshotsOffset;
        long oldLength = _snapshots.Sum(s => (long)s.StoredLength);
        if (_header.SnapshotCount > 0 && oldOffset != 0)
        {
            await _refcounts.UpdateAsync(oldOffset >> ClusterBits, ClustersFor(oldLength), -1, cancellationToken).ConfigureAwait(false);
        }

        _header = _header with { SnapshotCount = (uint)snapshots.Count, SnapshotsOffset = (ulong)newOffset };
        _snapshots.Clear();
        _snapshots.AddRange(snapshots);
    }

    private async ValueTask MoveRefcountTableAsync(long offset, int clusters, CancellationToken cancellationToken)
    {
        var fields = new byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(fields, (ulong)offset);
        BinaryPrimitives.WriteUInt32BigEndian(fields.AsSpan(8), (uint)clusters);
        await _file.WriteAtAsync(48, fields, cancellationToken).ConfigureAwait(false);
        _header = _header with { RefcountTableOffset = (ulong)offset, RefcountTableClusters = (uint)clusters };
    }
}
