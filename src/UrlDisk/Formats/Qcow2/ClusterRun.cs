namespace UrlDisk.Formats.Qcow2;

/// <summary>A run of guest bytes with one kind and, for normal data, contiguous host bytes.</summary>
internal readonly record struct ClusterRun(ClusterKind Kind, long Length, long HostOffset, ulong L2Raw);
