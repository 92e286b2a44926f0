namespace UrlDisk.Fuzz;

/// <summary>The checked-in corpus: tests/fuzz-corpus/TARGET/*, seeds and every past finding (kept as regressions).</summary>
public static class Corpus
{
    /// <summary>Finds tests/fuzz-corpus by walking up from <paramref name="start"/> (the build output or the working directory).</summary>
    public static string? FindRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fuzz-corpus");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    public static List<byte[]> Load(string directory)
        => !Directory.Exists(directory)
            ? []
            : [.. Directory.EnumerateFiles(directory).Where(f => !f.EndsWith(".md", StringComparison.Ordinal)).Order(StringComparer.Ordinal).Select(File.ReadAllBytes)];
}
