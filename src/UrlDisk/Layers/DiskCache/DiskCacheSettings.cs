using UrlDisk.Specs;

namespace UrlDisk.Layers.DiskCache;

/// <summary>
/// The disk cache's options on a remote protocol node: <c>cache-dir=DIR</c> (<c>none</c> turns it off) and
/// <c>cache-max=SIZE</c> (default 10G). Without <c>cache-dir</c> the process-wide <see cref="DefaultDirectory"/>
/// applies (the CLI sets it from <c>--cache-dir</c> or <c>URLDISK_CACHE_DIR</c>). Not to be confused with
/// <see cref="Opening.OpenContext.CacheDirectory"/>, where the temporary fill caches of sources without byte
/// ranges go and which nothing reads again.
/// </summary>
internal sealed record DiskCacheSettings(string? Directory, long MaxBytes)
{
    public const long DefaultMaxBytes = 10L << 30;

    /// <summary>Smallest <c>cache-max</c>: a few blocks.</summary>
    public const long MinMaxBytes = 1L << 20;

    /// <summary>The option names a remote driver adds to its own.</summary>
    public static IReadOnlyCollection<string> OptionNames { get; } = ["cache-dir", "cache-max"];

    /// <summary>The directory used when a node names none; set once by the CLI.</summary>
    public static string? DefaultDirectory { get; set; }

    public static DiskCacheSettings Default => new(NullIfOff(DefaultDirectory), DefaultMaxBytes);

    public bool Enabled => Directory is not null;

    public static DiskCacheSettings FromNode(string driver, OptionTree node)
    {
        string? dir = node["cache-dir"];
        if (dir is { Length: 0 })
        {
            throw new OptionException($"{driver}: option '{node.Path}cache-dir' is empty; give a directory (or none to turn the disk cache off)");
        }

        dir = dir is null ? NullIfOff(DefaultDirectory) : NullIfOff(dir);
        long max = node.GetSize("cache-max", DefaultMaxBytes);
        if (max < MinMaxBytes)
        {
            throw new OptionException($"{driver}: option '{node.Path}cache-max': {max} bytes is too small; at least 1M (sizes take T/G/M/K/k/b suffixes; default 10G)");
        }

        if (node["cache-max"] is not null && dir is null)
        {
            throw new OptionException($"{driver}: option '{node.Path}cache-max' needs a disk cache: give cache-dir=DIR, --cache-dir DIR or URLDISK_CACHE_DIR");
        }

        return new DiskCacheSettings(dir, max);
    }

    private static string? NullIfOff(string? dir) => dir is null or "" or "none" ? null : Path.GetFullPath(dir);
}
