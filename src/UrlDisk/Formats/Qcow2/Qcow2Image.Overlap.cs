using System.Buffers.Binary;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// QEMU's overlap checks: host clusters about to be written (new data clusters, L2 tables, refcount blocks and
/// tables, and data written in place) must not hold metadata. Corrupt refcounts or tables can point there; a hit
/// marks the image corrupt (incompatible bit 1 on v3, as QEMU does), refuses the write before anything is
/// written, and refuses every later write.
/// </summary>
internal sealed partial class Qcow2Image
{
    /// <summary>Host offsets of the L2 tables the active L1 table points at.</summary>
    private HostClusterSet? _activeL2Tables;

    private bool _markedCorrupt;

    private void LoadActiveL2Tables()
    {
        _activeL2Tables = new HostClusterSet(ClusterBits);
        foreach (ulong raw in _l1)
        {
            long l2 = new L1Entry(raw).L2Offset;
            if (l2 != 0)
            {
                _activeL2Tables.Add(l2);
            }
        }
    }

    /// <summary>Names the metadata structure that host bytes [offset, offset+length) touch, or null.</summary>
    /// <param name="ownL2Table">An L2 table the caller is about to update (it may touch itself).</param>
    private string? FindMetadataOverlap(long offset, long length, long ownL2Table = -1)
    {
        var h = Header;
        bool Overlaps(long start, long bytes) => bytes > 0 && offset < start + bytes && start < offset + length;
        if (offset < ClusterSize)
        {
            return "the header";
        }

        if (Overlaps((long)h.L1TableOffset, h.L1Size * 8L))
        {
            return "the active L1 table";
        }

        if (Refcounts.FindOverlap(offset, length) is { } refcounts)
        {
            return refcounts;
        }

        if (_activeL2Tables!.AnyIn(offset, length, except: ownL2Table))
        {
            return "an active L2 table";
        }

        if (h.SnapshotCount > 0 && Overlaps((long)h.SnapshotsOffset, Snapshots.Sum(s => (long)s.StoredLength)))
        {
            return "the snapshot table";
        }

        foreach (var s in Snapshots)
        {
            if (Overlaps(s.L1Offset, s.L1Size * 8L))
            {
                return "an inactive L1 table";
            }
        }

        return null;
    }

    /// <summary>Refuses (and marks the image corrupt) when <paramref name="what"/> at host [offset, offset+length) would overwrite metadata.</summary>
    private async ValueTask GuardAsync(long offset, long length, string what, CancellationToken cancellationToken, long ownL2Table = -1)
    {
        if (FindMetadataOverlap(offset, length, ownL2Table) is not { } hit)
        {
            return;
        }

        await MarkCorruptAsync(cancellationToken).ConfigureAwait(false);
        throw new ImageFormatException($"qcow2: {what} at host offset {offset} would overlap {hit} (its refcounts or tables are corrupt); nothing was overwritten, the image is now marked corrupt and refuses writes: read it read-only, or repair it with 'check -r all'");
    }

    private async ValueTask MarkCorruptAsync(CancellationToken cancellationToken)
    {
        _markedCorrupt = true;
        if (!IsV3)
        {
            return; // version 2 has no feature bits: refused for this session only, as in QEMU
        }

        var h = Header with { IncompatibleFeatures = Header.IncompatibleFeatures | Qcow2Features.Corrupt };
        _headerCluster = _headerCluster with { Header = h };
        var field = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(field, h.IncompatibleFeatures);
        await _writableFile!.WriteAtAsync(72, field, cancellationToken).ConfigureAwait(false);
        await _writableFile.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private void ThrowIfMarkedCorrupt()
    {
        if (_markedCorrupt)
        {
            throw new ImageFormatException("qcow2: the image is marked corrupt (a write would have overwritten its metadata); writes are refused: read it read-only, or repair it with 'check -r all'");
        }
    }
}
