using System.CommandLine;

namespace UrlDisk.Cli;

/// <summary>
/// qemu's cache modes (<c>-t</c>, <c>-T</c>, qemu-nbd's <c>--cache</c>), checked in one place. UrlDisk gives them one
/// meaning: <c>unsafe</c> leaves out the final flush of an output a verb writes; every other mode flushes it before
/// the verb exits 0. <c>none</c> and <c>directsync</c> do not open files with O_DIRECT and <c>writethrough</c> does not
/// flush after each write: the page cache is used in every mode, and what is durable when the command returns is the
/// same. Sources are read the same way in every mode.
/// </summary>
internal static class CacheMode
{
    public static IReadOnlyList<string> Modes { get; } = ["none", "writeback", "writethrough", "directsync", "unsafe"];

    /// <summary>An output's <c>-t</c> (null: not given).</summary>
    public static Option<string?> Output(string description) => new("-t") { Description = description + ": " + string.Join(", ", Modes) };

    /// <summary>A source's <c>-T</c>: checked, with no effect on how sources are read.</summary>
    public static Option<string?> Source() => new("-T") { Description = "Cache mode of the sources, accepted as qemu-img's (" + string.Join(", ", Modes) + "); sources are read the same way in every mode" };

    /// <summary>
    /// Checks an output cache mode (<c>-t</c>); returns whether the output is flushed to disk at the end (every mode
    /// but <c>unsafe</c>; <paramref name="defaultMode"/> when not given).
    /// </summary>
    public static bool FlushesOutput(string? mode, string defaultMode = "writeback")
    {
        Check(mode, "Invalid cache option");
        return (mode ?? defaultMode) != "unsafe";
    }

    /// <summary>Checks a source cache mode (<c>-T</c>).</summary>
    public static void CheckSource(string? mode) => Check(mode, "Invalid source cache option");

    /// <summary>Checks <paramref name="mode"/>: <paramref name="error"/> (qemu-img's words) and the allowed modes when it is not one.</summary>
    public static void Check(string? mode, string error)
    {
        if (mode is not null && !Modes.Contains(mode))
        {
            throw new OptionException($"{error}: {mode} (allowed: {string.Join(", ", Modes)})");
        }
    }
}
