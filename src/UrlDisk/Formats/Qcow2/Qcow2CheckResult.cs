namespace UrlDisk.Formats.Qcow2;

/// <summary>What <see cref="Qcow2Checker"/> found (after any repair), with qemu-img check's figures.</summary>
public sealed record Qcow2CheckResult
{
    /// <summary>Corruptions found (and not fixed).</summary>
    public int Corruptions { get; init; }
    /// <summary>Leaked clusters found (allocated but unused; harmless, <c>repair: "leaks"</c> frees them).</summary>
    public int Leaks { get; init; }
    /// <summary>Corruptions repaired.</summary>
    public int CorruptionsFixed { get; init; }
    /// <summary>Leaked clusters freed.</summary>
    public int LeaksFixed { get; init; }
    /// <summary>The offset just past the last allocated cluster of the image file.</summary>
    public long ImageEndOffset { get; init; }
    /// <summary>Clusters of guest data (virtual size / cluster size).</summary>
    public long TotalClusters { get; init; }
    /// <summary>Guest clusters allocated in this image.</summary>
    public long AllocatedClusters { get; init; }
    /// <summary>Allocated guest clusters not right after the previous one in the file.</summary>
    public long FragmentedClusters { get; init; }
    /// <summary>Guest clusters stored compressed.</summary>
    public long CompressedClusters { get; init; }

    /// <summary>One line per problem, in qemu-img's words ("Leaked cluster 5 refcount=1 reference=0").</summary>
    public IReadOnlyList<string> Messages { get; init; } = [];

    /// <summary>qemu-img check's exit code: 0 clean, 2 corruptions, 3 leaks only.</summary>
    public int ExitCode => Corruptions > 0 ? 2 : Leaks > 0 ? 3 : 0;
}
