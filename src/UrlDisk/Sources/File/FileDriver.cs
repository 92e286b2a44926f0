using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Sources.File;

/// <summary>Local files and block devices: <c>/path</c>, <c>file:///path</c>, or <c>driver=file,filename=…</c>.</summary>
internal sealed class FileDriver : IProtocolDriver
{
    public string Name => "file";

    public IReadOnlyCollection<string> Schemes { get; } = ["file"];

    public IReadOnlyCollection<string> OptionNames { get; } = ["filename"];

    public SourceTraits Traits => SourceTraits.None;

    public ValueTask<IBlockDevice> OpenAsync(OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        string name = node.GetRequiredString(Name, "filename");
        if (name.Length == 0)
        {
            throw new OptionException($"file: option '{node.Path}filename' is empty; give the path or file:/// URL of the image");
        }

        string path = ToPath(name);
        return new(FileSource.Open(path, context.Writable));
    }

    /// <summary><c>file:///a/b%20c</c> → <c>/a/b c</c>; a plain path is returned as it is.</summary>
    public static string ToPath(string name)
    {
        if (name.StartsWith("file:", StringComparison.OrdinalIgnoreCase))
        {
            if (!Uri.TryCreate(name, UriKind.Absolute, out var uri) || !uri.IsFile)
            {
                throw new OptionException($"file: '{name}' is not a valid file URL; use file:///absolute/path");
            }

            if (uri.LocalPath.Contains('\0'))
            {
                throw new OptionException($"file: '{name}' names a path with a NUL character (%00), which no path can hold");
            }

            return uri.LocalPath;
        }

        return name;
    }
}
