using UrlDisk.Formats.Qcow2;

namespace UrlDisk.Formats;

/// <summary>
/// What a format's checker found, with the figures <c>qemu-img check</c> prints for that format (the one shape the
/// check verb reports, whatever the format). Counts qemu-img leaves out for a format stay zero or null here.
/// </summary>
internal sealed record ImageCheckResult
{
    /// <summary>The format checked ("qcow2", "vmdk", "vhdx", "vdi").</summary>
    public required string Format { get; init; }
    public int Corruptions { get; init; }
    public int Leaks { get; init; }
    public int CorruptionsFixed { get; init; }
    public int LeaksFixed { get; init; }
    /// <summary>The offset just past the image's last allocated data; null where qemu-img prints none (vmdk, vhdx, vdi).</summary>
    public long? ImageEndOffset { get; init; }
    public long TotalClusters { get; init; }
    public long AllocatedClusters { get; init; }
    public long FragmentedClusters { get; init; }
    public long CompressedClusters { get; init; }

    /// <summary>One line per problem, in qemu-img's words, printed on stderr before the summary.</summary>
    public IReadOnlyList<string> Messages { get; init; } = [];

    /// <summary>
    /// Why the check could not finish, as qemu-img says it after "Check failed: " (vmdk stops at its first bad grain
    /// with "Invalid argument"); then no summary is printed and the exit code is 1.
    /// </summary>
    public string? Failure { get; init; }

    /// <summary>qemu-img check's exit code: 0 clean, 1 check failed, 2 corruptions, 3 leaks only.</summary>
    public int ExitCode => Failure is not null ? 1 : Corruptions > 0 ? 2 : Leaks > 0 ? 3 : 0;

    /// <summary>The qcow2 checker's result in this shape; after a repair qemu-img prefixes each problem with "Repairing ".</summary>
    public static ImageCheckResult From(Qcow2CheckResult r, bool repaired) => new()
    {
        Format = "qcow2",
        Corruptions = r.Corruptions,
        Leaks = r.Leaks,
        CorruptionsFixed = r.CorruptionsFixed,
        LeaksFixed = r.LeaksFixed,
        ImageEndOffset = r.ImageEndOffset,
        TotalClusters = r.TotalClusters,
        AllocatedClusters = r.AllocatedClusters,
        FragmentedClusters = r.FragmentedClusters,
        CompressedClusters = r.CompressedClusters,
        Messages = repaired ? [.. r.Messages.Select(m => "Repairing " + m)] : r.Messages,
    };
}
