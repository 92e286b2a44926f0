using System.Buffers.Binary;
using UrlDisk.Opening;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// A qcow2 image (v2 or v3) over a source: reads through L1/L2 tables with a bounded L2 cache, compressed and
/// zero clusters, extended L2 subclusters and a lazily opened backing chain; writes when the source is a
/// writable local file.
/// </summary>
internal sealed partial class Qcow2Image : BlockDevice, IHasBacking
{
    private const int MaxL1Bytes = 32 * 1024 * 1024;
    private const int MaxSnapshots = 65536;

    private readonly IBlockDevice _file;
    private readonly IHostFile? _writableFile;
    private readonly bool _orderWrites;
    private readonly OpenContext _context;
    private ulong[] _l1; // replaced when resize grows the L1 table
    private readonly L2TableCache _l2Cache;
    private readonly BackingImage? _backing;
    private readonly SemaphoreSlim _metadataLock = new(1, 1);
    private Qcow2Refcounts? _refcounts;
    private Qcow2HeaderCluster _headerCluster;

    private Qcow2Image(IBlockDevice file, Qcow2HeaderCluster headerCluster, ulong[] l1, IReadOnlyList<SnapshotEntry> snapshots, OpenContext context, IHostFile? writableFile, bool orderWrites)
    {
        _orderWrites = orderWrites;
        _file = file;
        _headerCluster = headerCluster;
        _l1 = l1;
        _context = context;
        _writableFile = writableFile;
        Snapshots = snapshots;
        var h = headerCluster.Header;
        ClusterBits = h.ClusterBits;
        ClusterSize = 1 << ClusterBits;
        ExtendedL2 = h.HasExtendedL2;
        L2Bits = ClusterBits - (ExtendedL2 ? 4 : 3);
        SubclusterBits = ExtendedL2 ? ClusterBits - 5 : ClusterBits;
        _l2Cache = new L2TableCache((int)Math.Clamp(32L * 1024 * 1024 / ClusterSize, 16, 4096));
        if (headerCluster.BackingFile is { } name && !context.NoBacking)
        {
            _backing = BackingChain.Resolve(name, headerCluster.BackingFormat, context, "qcow2");
        }

        bool writable = writableFile is not null;
        Info = new BlockDeviceInfo
        {
            Driver = "qcow2",
            DisplayName = file.Info.DisplayName,
            CanWrite = writable,
            CanWriteZeroes = writable,
            CanTrim = writable,
            CanFlush = writable,
            ReportsAllocation = true,
            MinimumBlockSize = 1,
            PreferredBlockSize = ClusterSize,
            Details = BuildDetails(),
            Child = file,
        };
    }

    public override long Length => (long)_headerCluster.Header.Size;

    public override BlockDeviceInfo Info { get; }

    public int ClusterBits { get; }
    public int ClusterSize { get; }
    public bool ExtendedL2 { get; }
    public Qcow2Header Header => _headerCluster.Header;
    public Qcow2HeaderCluster HeaderCluster => _headerCluster;
    public IReadOnlyList<SnapshotEntry> Snapshots { get; }

    /// <summary>The backing file name as stored in the header, if any.</summary>
    public string? BackingFileName => _headerCluster.BackingFile;

    /// <summary>Where the backing file is opened from (resolved against this image's location).</summary>
    public string? BackingLocation => _backing?.Location;

    /// <summary>log2 of L2 entries per table.</summary>
    internal int L2Bits { get; }

    /// <summary>log2 of the allocation unit inside a cluster (a subcluster with extended L2, else the cluster).</summary>
    internal int SubclusterBits { get; }

    internal IBlockDevice File => _file;

    /// <summary>Opens the backing image (once) and returns it; null when there is none.</summary>
    public ValueTask<IBlockDevice?> GetBackingAsync(CancellationToken cancellationToken = default)
        => _backing is null ? ValueTask.FromResult<IBlockDevice?>(null) : _backing.GetAsync(cancellationToken);

    public static ValueTask<Qcow2Image> OpenAsync(IBlockDevice file, OpenContext context, CancellationToken cancellationToken)
        => OpenAsync(file, context, context.Writable && file is IGrowableFile { Info.CanWrite: true } growable ? new FileHostFile(growable) : null, cancellationToken);

    /// <summary>Opens the image; writes go to <paramref name="writer"/> (null: read-only).</summary>
    /// <param name="orderWrites">
    /// Order metadata writes with flushes so that a crash leaves at worst leaked clusters; false only for a new
    /// image nobody uses until it is complete.
    /// </param>
    internal static async ValueTask<Qcow2Image> OpenAsync(IBlockDevice file, OpenContext context, IHostFile? writer, CancellationToken cancellationToken, bool orderWrites = true)
    {
        int headLength = (int)Math.Min(file.Length, 64 * 1024);
        var head = new byte[headLength];
        await file.ReadAsync(0, head, cancellationToken).ConfigureAwait(false);
        if (!Qcow2Header.TryRead(head, out var header, out string? error))
        {
            throw new ImageFormatException("qcow2: " + error);
        }

        // Extensions and the backing name almost always fit in the first 64 KiB: read the rest of a large
        // cluster 0 only when they do not.
        if (!Qcow2HeaderCluster.TryRead(head.AsSpan(0, (int)Math.Min(head.Length, header.ClusterSize)), out var hc, out error))
        {
            if (header.ClusterSize <= headLength || file.Length <= headLength)
            {
                throw new ImageFormatException("qcow2: " + error);
            }

            head = new byte[(int)Math.Min(file.Length, header.ClusterSize)];
            await file.ReadAsync(0, head, cancellationToken).ConfigureAwait(false);
            if (!Qcow2HeaderCluster.TryRead(head, out hc, out error))
            {
                throw new ImageFormatException("qcow2: " + error);
            }
        }

        Validate(hc, file.Length);
        var h = hc.Header;
        var l1 = await ReadL1Async(file, (long)h.L1TableOffset, (int)h.L1Size, cancellationToken).ConfigureAwait(false);
        var snapshots = await ReadSnapshotsAsync(file, h, cancellationToken).ConfigureAwait(false);
        var writable = writer;
        if (writable is not null && h.IsCorrupt)
        {
            throw new ImageFormatException("qcow2: the image is marked corrupt; open it read-only or repair it with 'check -r all'");
        }

        if (writable is not null && h.IsDirty)
        {
            // As QEMU: refcounts of a dirty image may be stale; rebuild them before writing, then clear the bit.
            var check = await Qcow2Checker.CheckAsync(file, "all", cancellationToken).ConfigureAwait(false);
            if (check.Corruptions > 0)
            {
                throw new ImageFormatException($"qcow2: the image is dirty and {check.Corruptions} problems remain after repair; open it read-only");
            }

            h = h with { IncompatibleFeatures = h.IncompatibleFeatures & ~Qcow2Features.Dirty };
            hc = hc with { Header = h };
            var field = new byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(field, h.IncompatibleFeatures);
            await writable.WriteAtAsync(72, field, cancellationToken).ConfigureAwait(false);
            await writable.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        var image = new Qcow2Image(file, hc, l1, snapshots, context, writable, orderWrites);
        if (writable is not null)
        {
            await image.PrepareForWritingAsync(cancellationToken).ConfigureAwait(false);
        }

        return image;
    }

    /// <summary>
    /// Refuses what this implementation cannot interpret (unknown incompatible features, external data files,
    /// encryption, sizes it cannot address): open and check both use it, so check never passes an image that
    /// info and convert refuse. Messages use qemu-img's words where it has them.
    /// </summary>
    internal static void ThrowIfUnsupported(Qcow2HeaderCluster hc)
    {
        var h = hc.Header;
        ulong unknown = h.IncompatibleFeatures & ~Qcow2Features.KnownIncompatible;
        if (unknown != 0)
        {
            var names = Enumerable.Range(0, 64).Where(b => (unknown & (1UL << b)) != 0).Select(b => $"'{hc.IncompatibleFeatureName(b)}' (bit {b})");
            throw new ImageFormatException($"qcow2: Unsupported qcow2 feature(s): {string.Join(", ", names)} (header at offset 72)");
        }

        if ((h.IncompatibleFeatures & Qcow2Features.ExternalDataFile) != 0 || hc.ExternalDataFile is not null)
        {
            throw new ImageFormatException($"qcow2: images with an external data file{(hc.ExternalDataFile is { } f ? $" ('{f}')" : "")} are not supported");
        }

        if (h.CryptMethod != 0)
        {
            throw new ImageFormatException($"qcow2: encrypted images (crypt_method {h.CryptMethod}) are not supported");
        }

        int l2Bits = h.ClusterBits - (h.HasExtendedL2 ? 4 : 3);
        ulong l1Needed = (h.Size >> (h.ClusterBits + l2Bits)) + ((h.Size & ((1UL << (h.ClusterBits + l2Bits)) - 1)) != 0 ? 1UL : 0);
        if (h.Size >= 1UL << 62 || l1Needed > int.MaxValue)
        {
            throw new ImageFormatException($"qcow2: Image is too big: virtual size {h.Size} (header at offset 24) must be below 2^62 bytes and need fewer than 2^31 L1 entries");
        }

        if (h.L1Size < l1Needed)
        {
            throw new ImageFormatException($"qcow2: header at offset 36: L1 table has {h.L1Size} entries, the virtual size {h.Size} needs {l1Needed}");
        }

        if ((long)h.L1Size * 8 > MaxL1Bytes)
        {
            throw new ImageFormatException($"qcow2: header at offset 36: L1 table of {h.L1Size} entries is larger than {MaxL1Bytes / (1024 * 1024)} MiB");
        }
    }

    private static void Validate(Qcow2HeaderCluster hc, long fileLength)
    {
        ThrowIfUnsupported(hc);
        var h = hc.Header;
        long cs = h.ClusterSize;
        CheckTable("L1 table", 40, h.L1TableOffset, (long)h.L1Size * 8, cs, fileLength);
        if (h.RefcountTableClusters == 0 || (long)h.RefcountTableClusters * cs > 8L * 1024 * 1024 * 8)
        {
            throw new ImageFormatException($"qcow2: header at offset 56: refcount table of {h.RefcountTableClusters} clusters is not allowed (1 to {8L * 1024 * 1024 * 8 / cs})");
        }

        CheckTable("refcount table", 48, h.RefcountTableOffset, h.RefcountTableClusters * cs, cs, fileLength);
        if (h.SnapshotCount > MaxSnapshots)
        {
            throw new ImageFormatException($"qcow2: header at offset 60: {h.SnapshotCount} snapshots is more than {MaxSnapshots}");
        }

        if (h.SnapshotCount > 0)
        {
            CheckTable("snapshot table", 64, h.SnapshotsOffset, h.SnapshotCount * (long)SnapshotEntry.FixedSize, cs, fileLength);
        }
    }

    private static void CheckTable(string what, int field, ulong offset, long length, long clusterSize, long fileLength)
    {
        if (offset % (ulong)clusterSize != 0)
        {
            throw new ImageFormatException($"qcow2: header at offset {field}: {what} offset {offset} is not aligned to the cluster size {clusterSize}");
        }

        if (length > 0 && (offset > (ulong)fileLength || (ulong)length > (ulong)fileLength - offset))
        {
            throw new ImageFormatException($"qcow2: header at offset {field}: {what} at {offset} ({length} bytes) runs past the end of the file ({fileLength} bytes)");
        }
    }

    internal static async ValueTask<ulong[]> ReadL1Async(IBlockDevice file, long offset, int entries, CancellationToken cancellationToken)
    {
        var bytes = new byte[entries * 8];
        if (entries > 0)
        {
            await file.ReadAsync(offset, bytes, cancellationToken).ConfigureAwait(false);
        }

        var l1 = new ulong[entries];
        for (int i = 0; i < entries; i++)
        {
            l1[i] = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(i * 8));
        }

        return l1;
    }

    internal static async ValueTask<IReadOnlyList<SnapshotEntry>> ReadSnapshotsAsync(IBlockDevice file, Qcow2Header h, CancellationToken cancellationToken)
    {
        if (h.SnapshotCount == 0)
        {
            return [];
        }

        // Entries are variable length; read a generous window (bounded) and parse what it holds.
        long offset = (long)h.SnapshotsOffset;
        if (h.SnapshotCount > MaxSnapshots || offset <= 0 || offset >= file.Length || (offset & (h.ClusterSize - 1)) != 0)
        {
            throw new ImageFormatException($"qcow2: header at offset 64: snapshot table of {h.SnapshotCount} entries at offset {h.SnapshotsOffset} is unaligned or outside the file");
        }

        int window = (int)Math.Min(file.Length - offset, Math.Min(64L * 1024 * 1024, h.SnapshotCount * 2048L + 65536));
        var bytes = new byte[window];
        await file.ReadAsync(offset, bytes, cancellationToken).ConfigureAwait(false);
        var list = new List<SnapshotEntry>();
        int pos = 0;
        for (int i = 0; i < h.SnapshotCount; i++)
        {
            if (!SnapshotEntry.TryRead(bytes.AsSpan(pos), out var entry, out int consumed))
            {
                throw new ImageFormatException($"qcow2: snapshot table entry {i} at offset {offset + pos} is truncated or malformed");
            }

            list.Add(entry);
            pos += consumed;
        }

        return list;
    }

    /// <summary>qemu-img info's facts (top-level keys and <c>format-specific</c> data, qemu's names), then UrlDisk's own.</summary>
    private Dictionary<string, object?> BuildDetails()
    {
        var h = _headerCluster.Header;
        bool v3 = h.Version >= 3;
        var specific = new Dictionary<string, object?>
        {
            ["compat"] = v3 ? "1.1" : "0.10",
            ["compression-type"] = ClusterCompression.Name(h.CompressionType),
        };
        if (v3)
        {
            specific["lazy-refcounts"] = (h.CompatibleFeatures & Qcow2Features.LazyRefcounts) != 0;
        }

        specific["refcount-bits"] = h.RefcountBits;
        if (v3)
        {
            // qemu-img prints these two for compat=1.1 only.
            specific["corrupt"] = h.IsCorrupt;
            specific["extended-l2"] = ExtendedL2;
        }

        var d = new Dictionary<string, object?>
        {
            ["cluster-size"] = ClusterSize,
            ["dirty-flag"] = h.IsDirty,
            ["format-specific"] = specific,
        };
        if (_headerCluster.BackingFile is { } b)
        {
            d["backing-filename"] = Specs.Redact.Spec(b);
            if (_backing is not null)
            {
                d["full-backing-filename"] = Specs.Redact.Spec(_backing.Location);
            }

            if (_headerCluster.BackingFormat is { } backingFormat)
            {
                d["backing-filename-format"] = backingFormat;
            }

            if (Specs.Redact.Spec(b) != b)
            {
                d["backing-credentials"] = "stored in the image (shown redacted); prefer password-file in a json: backing spec";
            }
        }

        if (Snapshots.Count > 0)
        {
            var list = new List<IReadOnlyDictionary<string, object?>>(Snapshots.Count);
            foreach (var s in Snapshots)
            {
                var entry = new Dictionary<string, object?>
                {
                    ["id"] = s.Id,
                    ["name"] = s.Name,
                    ["vm-state-size"] = (long)s.VmStateSizeLarge,
                    ["date-sec"] = (long)s.DateSeconds,
                    ["date-nsec"] = (long)s.DateNanoseconds,
                    ["vm-clock-sec"] = (long)(s.VmClockNanoseconds / 1_000_000_000),
                    ["vm-clock-nsec"] = (long)(s.VmClockNanoseconds % 1_000_000_000),
                };
                if (s.Icount is { } icount)
                {
                    entry["icount"] = icount;
                }

                list.Add(entry);
            }

            d["snapshots"] = list;
        }

        return d;
    }

    protected override async ValueTask DisposeCoreAsync()
    {
        if (_writableFile is not null)
        {
            await _writableFile.FlushAsync(default).ConfigureAwait(false);
        }

        if (_backing is not null)
        {
            await _backing.DisposeAsync().ConfigureAwait(false);
        }

        await _file.DisposeAsync().ConfigureAwait(false);
        _metadataLock.Dispose();
    }
}
