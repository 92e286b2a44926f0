using System.Buffers;
using System.Buffers.Binary;

namespace UrlDisk.Formats.Qcow2;

/// <summary>Guest offset → L1 → L2 → run of clusters (or subclusters) of the same kind.</summary>
internal sealed partial class Qcow2Image
{
    internal long L2Coverage => (long)ClusterSize << L2Bits;

    internal async ValueTask<ClusterRun> MapAsync(long offset, long maxLength, CancellationToken cancellationToken)
    {
        long clusterIndex = offset >> ClusterBits;
        long l1Index = clusterIndex >> L2Bits;
        int l2Index = (int)(clusterIndex & ((1L << L2Bits) - 1));
        long untilTableEnd = L2Coverage - (offset & (L2Coverage - 1));
        long end = offset + Math.Min(maxLength, untilTableEnd);
        if (l1Index >= _l1.Length)
        {
            throw new ImageFormatException($"qcow2: guest offset {offset} is beyond the L1 table ({_l1.Length} entries)");
        }

        var l1 = new L1Entry(Volatile.Read(ref _l1[l1Index]));
        if (l1.L2Offset == 0)
        {
            return new ClusterRun(ClusterKind.Unallocated, end - offset, 0, 0);
        }

        var table = await GetL2TableAsync(l1.L2Offset, l1Index, cancellationToken).ConfigureAwait(false);
        var (kind, host, raw) = Classify(table, l1.L2Offset, l2Index, offset);
        if (kind == ClusterKind.Compressed)
        {
            long clusterEnd = ((offset >> ClusterBits) + 1) << ClusterBits;
            return new ClusterRun(kind, Math.Min(end, clusterEnd) - offset, 0, raw);
        }

        long unit = 1L << SubclusterBits;
        long p = (offset & ~(unit - 1)) + unit;
        while (p < end)
        {
            var (k, h, _) = Classify(table, l1.L2Offset, (int)((p >> ClusterBits) & ((1L << L2Bits) - 1)), p);
            if (k != kind || (kind == ClusterKind.Normal && h != host + (p - offset)))
            {
                break;
            }

            p += unit;
        }

        return new ClusterRun(kind, Math.Min(p, end) - offset, host, raw);
    }

    private (ClusterKind Kind, long Host, ulong Raw) Classify(ulong[] table, long tableOffset, int index, long guestOffset)
    {
        long withinCluster = guestOffset & (ClusterSize - 1);
        L2Entry entry = ExtendedL2
            ? new L2Entry(Volatile.Read(ref table[index * 2]), Volatile.Read(ref table[(index * 2) + 1]))
            : new L2Entry(Volatile.Read(ref table[index]));
        ClusterKind kind;
        if (ExtendedL2 && !entry.IsCompressed)
        {
            if ((entry.AllocatedSubclusters & entry.ZeroSubclusters) != 0)
            {
                throw L2Error(tableOffset, index, "a subcluster is marked both allocated and zero");
            }

            kind = entry.SubclusterKind((int)(withinCluster >> SubclusterBits));
        }
        else
        {
            kind = entry.Kind;
        }

        if (kind != ClusterKind.Normal)
        {
            return (kind, 0, entry.Raw);
        }

        long host = entry.HostOffset;
        if (host == 0)
        {
            throw L2Error(tableOffset, index, "allocated data with host offset 0 (external data files are not supported)");
        }

        if ((host & (ClusterSize - 1)) != 0)
        {
            throw L2Error(tableOffset, index, $"host offset {host} is not aligned to the cluster size {ClusterSize}");
        }

        return (kind, host + withinCluster, entry.Raw);
    }

    private ImageFormatException L2Error(long tableOffset, int index, string what)
        => new($"qcow2: L2 table at offset {tableOffset}, entry {index} (at offset {tableOffset + (index * (ExtendedL2 ? 16L : 8L))}): {what}");

    internal Task<ulong[]> GetL2TableAsync(long l2Offset, long l1Index, CancellationToken cancellationToken)
    {
        if ((l2Offset & (ClusterSize - 1)) != 0 || l2Offset > _file.Length - ClusterSize)
        {
            throw new ImageFormatException($"qcow2: L1 entry {l1Index} (at offset {(long)Header.L1TableOffset + (l1Index * 8)}): L2 table offset {l2Offset} is unaligned or outside the file ({_file.Length} bytes)");
        }

        return _l2Cache.GetAsync(l2Offset, off => LoadL2TableAsync(off, cancellationToken));
    }

    private async Task<ulong[]> LoadL2TableAsync(long l2Offset, CancellationToken cancellationToken)
    {
        var bytes = ArrayPool<byte>.Shared.Rent(ClusterSize);
        try
        {
            await _file.ReadAsync(l2Offset, bytes.AsMemory(0, ClusterSize), cancellationToken).ConfigureAwait(false);
            var table = new ulong[ClusterSize / 8];
            for (int i = 0; i < table.Length; i++)
            {
                table[i] = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(i * 8));
            }

            return table;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }
}
