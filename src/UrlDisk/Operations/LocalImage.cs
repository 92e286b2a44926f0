using UrlDisk.Opening;
using UrlDisk.Sources.File;
using UrlDisk.Specs;

namespace UrlDisk.Operations;

/// <summary>Which specs name a local file: the verbs that change an image in place work on those only.</summary>
internal static class LocalImage
{
    /// <summary>The local path of the spec's own protocol node (not its backing chain), or null when it is remote.</summary>
    public static string? PathOf(OptionTree tree)
    {
        var node = tree.HasChild("file") ? tree.Child("file") : tree;
        string? driver = node["driver"];
        if (driver is not null && driver != "file")
        {
            return null;
        }

        string? name = node["filename"] ?? node["url"];
        if (string.IsNullOrEmpty(name))
        {
            return null;
        }

        return ImageOpener.SchemeOf(name) switch
        {
            null => name,
            "file" => FileDriver.ToPath(name),
            _ => null,
        };
    }

    /// <summary>The local path, or an error naming the verb and the remote image.</summary>
    public static string RequirePath(OptionTree tree, string spec, string verb, string why)
        => PathOf(tree) ?? throw new OptionException($"{verb}: '{Redact.Spec(spec)}' is a remote image; {why}");
}
