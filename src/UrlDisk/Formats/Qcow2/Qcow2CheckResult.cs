namespace UrlDisk.Formats.Qcow2;

/// <summary>What <see cref="Qcow2Checker"/> found (after any repair), with qemu-img check's figures.</summary>
public sealed record Qcow2CheckResult
{
    public int Corruptions { get; init; }
    public int Leaks { get; init; }
    public int CorruptionsFixed { get; init; }
    public int LeaksFixed { get; init; }
    public long ImageEndOffset { get; init; }
    public long TotalClusters { get; init; }
    public long AllocatedClusters { get; init; }
    public long FragmentedClusters { get; init; }
    public long CompressedClusters { get; init; }

    /// <summary>One line per problem, in qemu-img's words ("Leaked cluster 5 refcount=1 reference=0").</summary>
    public IReadOnlyList<string> Messages { get; init; } = [];

    /// <summary>qemu-img check's exit code: 0 clean, 2 corruptions, 3 leaks only.</summary>
    public int ExitCode => Corruptions > 0 ? 2 : Leaks > 0 ? 3 : 0;
}
