namespace UrlDisk.Formats.Qcow2;

/// <summary>Host offsets of single-cluster metadata (L2 tables, refcount blocks), asked whether a host range touches one.</summary>
internal sealed class HostClusterSet(int clusterBits)
{
    private readonly HashSet<long> _offsets = [];

    public void Add(long offset) => _offsets.Add(offset);

    public void Remove(long offset) => _offsets.Remove(offset);

    /// <summary>True when a cluster of the set other than <paramref name="except"/> lies in host bytes [offset, offset+length).</summary>
    public bool AnyIn(long offset, long length, long except = -1)
    {
        long first = offset >> clusterBits;
        long last = (offset + length - 1) >> clusterBits;
        if (last - first >= _offsets.Count)
        {
            return _offsets.Any(o => o != except && o >> clusterBits >= first && o >> clusterBits <= last);
        }

        for (long c = first; c <= last; c++)
        {
            if (c << clusterBits != except && _offsets.Contains(c << clusterBits))
            {
                return true;
            }
        }

        return false;
    }
}
