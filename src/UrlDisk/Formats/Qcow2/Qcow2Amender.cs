using System.Buffers.Binary;
using UrlDisk.Sources.File;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// qemu-img amend for qcow2: the version (compat 0.10 = v2, 1.1 = v3) and lazy refcounts of a local file no writer
/// has open. Going down to v2 turns zero clusters into what v2 can say (unallocated when nothing lies below, zeros
/// written into a preallocated cluster), as qemu-img does; a zero cluster over a backing file would need a new data
/// cluster, which is refused instead.
/// </summary>
internal static class Qcow2Amender
{
    /// <summary>The amend options qemu-img takes for qcow2 that this implementation does not change, with where to go instead.</summary>
    public static IReadOnlyDictionary<string, string> Unsupported { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["size"] = "use 'urldisk resize'",
        ["backing_file"] = "use 'urldisk rebase -u'",
        ["backing_fmt"] = "use 'urldisk rebase -u'",
        ["refcount_bits"] = "convert into a new image with -o refcount_bits",
        ["data_file"] = "external data files are not supported",
        ["data_file_raw"] = "external data files are not supported",
        ["encrypt.iter-time"] = "encryption is not supported",
        ["encrypt.keyslot"] = "encryption is not supported",
        ["encrypt.new-secret"] = "encryption is not supported",
        ["encrypt.old-secret"] = "encryption is not supported",
        ["encrypt.state"] = "encryption is not supported",
    };

    /// <summary>Applies the changes; null leaves a setting as it is. Returns false when nothing needed to change.</summary>
    public static async ValueTask<bool> AmendAsync(FileSource source, int? version, bool? lazyRefcounts, CancellationToken cancellationToken)
    {
        var file = new FileHostFile(source);
        var head = new byte[(int)Math.Min(source.Length, 2 * 1024 * 1024)];
        await source.ReadAsync(0, head, cancellationToken).ConfigureAwait(false);
        if (!Qcow2Header.TryRead(head, out var h, out string? error)
            || !Qcow2HeaderCluster.TryRead(head.AsSpan(0, (int)Math.Min(head.Length, h.ClusterSize)), out var hc, out error))
        {
            throw new ImageFormatException("qcow2: " + error);
        }

        Qcow2Image.ThrowIfUnsupported(hc);
        if (h.IsCorrupt || h.IsDirty)
        {
            throw new ImageFormatException($"qcow2: the image is marked {(h.IsCorrupt ? "corrupt" : "dirty")}; repair it with 'urldisk check -r all' first");
        }

        int newVersion = version ?? (int)h.Version;
        bool lazy = lazyRefcounts ?? (h.CompatibleFeatures & Qcow2Features.LazyRefcounts) != 0;
        if (lazy && newVersion < 3)
        {
            throw new OptionException("amend: Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)");
        }

        Qcow2Header updated;
        if (newVersion == 2 && h.Version == 3)
        {
            if (h.RefcountOrder != 4)
            {
                throw new UrlDiskException($"amend: compat=0.10 requires refcount_bits=16 (the image has {h.RefcountBits})");
            }

            ulong incompatible = h.IncompatibleFeatures;
            if (incompatible != 0)
            {
                string which = (incompatible & Qcow2Features.ExtendedL2) != 0 ? "extended L2 entries"
                    : (incompatible & Qcow2Features.CompressionType) != 0 ? $"compression type {ClusterCompression.Name(h.CompressionType)}"
                    : $"incompatible features 0x{incompatible:x}";
                throw new UrlDiskException($"amend: Cannot downgrade an image with {which}; version 2 (compat=0.10) cannot describe them");
            }

            await ExpandZeroClustersAsync(source, file, h, hc.BackingFile is not null, cancellationToken).ConfigureAwait(false);
            updated = h with { Version = 2, HeaderLength = Qcow2Header.V2Length, CompatibleFeatures = 0, AutoclearFeatures = 0, IncompatibleFeatures = 0, CompressionType = 0, UnknownFields = [] };
            hc = hc with { FeatureNames = [], OtherExtensions = hc.OtherExtensions.Where(e => e.Type != HeaderExtension.Bitmaps).ToList() };
        }
        else if (newVersion == 3 && h.Version == 2)
        {
            updated = h with { Version = 3, HeaderLength = Qcow2Header.CurrentV3Length, RefcountOrder = 4, CompatibleFeatures = lazy ? Qcow2Features.LazyRefcounts : 0 };
            hc = hc with { FeatureNames = FeatureName.ForClusterSize(h.ClusterSize) };
        }
        else
        {
            ulong compatible = lazy ? h.CompatibleFeatures | Qcow2Features.LazyRefcounts : h.CompatibleFeatures & ~Qcow2Features.LazyRefcounts;
            if (compatible == h.CompatibleFeatures)
            {
                return false;
            }

            updated = h with { CompatibleFeatures = compatible };
        }

        var cluster0 = new byte[h.ClusterSize];
        if (!(hc with { Header = updated }).TryWrite(cluster0, out _))
        {
            throw new UrlDiskException("amend: the new header, its extensions and the backing file name do not fit in cluster 0");
        }

        await file.WriteAtAsync(0, cluster0, cancellationToken).ConfigureAwait(false);
        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Zero clusters (active and snapshot tables) made expressible in v2: unallocated ones become plain unallocated
    /// entries (without a backing file they read as zeros anyway), preallocated ones get zeros written into their
    /// cluster. Checked in full before anything is written.
    /// </summary>
    private static async ValueTask ExpandZeroClustersAsync(FileSource source, FileHostFile file, Qcow2Header h, bool hasBacking, CancellationToken cancellationToken)
    {
        var tables = new SortedSet<long>();
        foreach (var (offset, size) in await L1TablesAsync(source, h, cancellationToken).ConfigureAwait(false))
        {
            var bytes = new byte[size * 8];
            await file.ReadAsync(offset, bytes, cancellationToken).ConfigureAwait(false);
            for (int i = 0; i < size; i++)
            {
                long l2 = new L1Entry(BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(i * 8))).L2Offset;
                if (l2 != 0)
                {
                    tables.Add(l2);
                }
            }
        }

        var refcounts = await Qcow2Refcounts.LoadAsync(file, h, (_, _, _) => ValueTask.CompletedTask, null, orderWrites: true, cancellationToken).ConfigureAwait(false);
        var changes = new List<(long Table, byte[] Bytes)>();
        var zeroed = new List<long>();
        foreach (long l2 in tables)
        {
            var table = new byte[h.ClusterSize];
            await file.ReadAsync(l2, table, cancellationToken).ConfigureAwait(false);
            bool changed = false;
            for (int i = 0; i < table.Length / 8; i++)
            {
                var e = new L2Entry(BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(i * 8)));
                if (!e.HasZeroFlag)
                {
                    continue;
                }

                if (e.HostOffset == 0)
                {
                    if (hasBacking)
                    {
                        throw new UrlDiskException("amend: Cannot downgrade: the image has zero clusters over its backing file, which version 2 can only store as clusters of zeros (qemu-img allocates them; urldisk does not)");
                    }

                    BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(i * 8), 0);
                }
                else
                {
                    if (await refcounts.GetAsync(e.HostOffset >> h.ClusterBits, cancellationToken).ConfigureAwait(false) != 1)
                    {
                        throw new UrlDiskException($"amend: Cannot downgrade: the preallocated zero cluster at {e.HostOffset} is shared with a snapshot");
                    }

                    zeroed.Add(e.HostOffset);
                    BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(i * 8), e.Raw & ~Qcow2Entries.ZeroFlag);
                }

                changed = true;
            }

            if (changed)
            {
                changes.Add((l2, table));
            }
        }

        if (changes.Count == 0)
        {
            return;
        }

        var zeros = new byte[h.ClusterSize];
        foreach (long host in zeroed)
        {
            await file.WriteAtAsync(host, zeros, cancellationToken).ConfigureAwait(false);
        }

        await file.FlushAsync(cancellationToken).ConfigureAwait(false); // the zeros before the entries that expose them
        foreach (var (l2, bytes) in changes)
        {
            await file.WriteAtAsync(l2, bytes, cancellationToken).ConfigureAwait(false);
        }

        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async ValueTask<List<(long Offset, int Size)>> L1TablesAsync(FileSource source, Qcow2Header h, CancellationToken cancellationToken)
    {
        var list = new List<(long, int)> { ((long)h.L1TableOffset, (int)h.L1Size) };
        foreach (var s in await Qcow2Image.ReadSnapshotsAsync(source, h, cancellationToken).ConfigureAwait(false))
        {
            list.Add((s.L1Offset, (int)s.L1Size));
        }

        return list;
    }
}
