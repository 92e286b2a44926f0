using UrlDisk.Specs;

namespace UrlDisk.Opening;

/// <summary>
/// Resolves a backing file name stored in an overlay the way QEMU does: <c>json:</c>, URLs and absolute paths
/// are used as they are; a relative name is joined to the directory of the overlay's own location.
/// </summary>
internal static class BackingName
{
    public static string Resolve(string name, string? overlayLocation)
    {
        if (name.StartsWith("json:", StringComparison.Ordinal) || HasProtocol(name) || Path.IsPathRooted(name))
        {
            return name;
        }

        if (string.IsNullOrEmpty(overlayLocation) || overlayLocation.StartsWith("json:", StringComparison.Ordinal))
        {
            throw new ImageFormatException($"cannot use the relative backing file name '{Redact.Spec(name)}': the overlay has no location to resolve it against");
        }

        if (ImageOpener.SchemeOf(overlayLocation) is not null)
        {
            int authority = overlayLocation.IndexOf("://", StringComparison.Ordinal) + 3;
            int slash = overlayLocation.LastIndexOf('/');
            return slash < authority ? overlayLocation + "/" + name : overlayLocation[..(slash + 1)] + name;
        }

        string? dir = Path.GetDirectoryName(overlayLocation);
        return string.IsNullOrEmpty(dir) ? name : Path.Combine(dir, name);
    }

    /// <summary>
    /// True when <paramref name="location"/> (a resolved backing name) reads the local file system: a path,
    /// a file: URL, or a json: spec with a file driver or a path-like filename.
    /// </summary>
    public static bool IsLocal(string location)
    {
        if (!location.StartsWith("json:", StringComparison.Ordinal))
        {
            string? scheme = ImageOpener.SchemeOf(location);
            return scheme is null or "file";
        }

        OptionTree tree;
        try
        {
            tree = SpecParser.ParseFilename(location);
        }
        catch (OptionException)
        {
            return false; // unparseable: opening it fails anyway
        }

        foreach (var (key, value) in tree.Pairs)
        {
            bool isDriver = key == "driver" || key.EndsWith(".driver", StringComparison.Ordinal);
            bool isName = key.EndsWith("filename", StringComparison.Ordinal) || key.EndsWith("url", StringComparison.Ordinal);
            if ((isDriver && value == "file") || (isName && ImageOpener.SchemeOf(value) is null or "file"))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>QEMU's path_has_protocol: a ':' before any '/'.</summary>
    public static bool HasProtocol(string name)
    {
        int colon = name.IndexOf(':', StringComparison.Ordinal);
        int slash = name.IndexOf('/', StringComparison.Ordinal);
        return colon > 0 && (slash < 0 || colon < slash);
    }

    /// <summary>The identity of a location for loop detection: full local path, or the URL/spec as it is.</summary>
    public static string ChainKey(string location)
        => location.StartsWith("json:", StringComparison.Ordinal) || HasProtocol(location) ? location : Path.GetFullPath(location);
}
