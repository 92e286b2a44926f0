namespace UrlDisk.Formats.Qcow2;

/// <summary>What an L2 entry (with its extended bitmap, if any) says about a cluster.</summary>
internal enum ClusterKind
{
    /// <summary>Not allocated here: read the backing file, or zeros.</summary>
    Unallocated,

    /// <summary>Reads as zeros (zero flag), possibly with a preallocated host cluster.</summary>
    Zero,

    /// <summary>Data at a host offset.</summary>
    Normal,

    /// <summary>Compressed data.</summary>
    Compressed,
}
