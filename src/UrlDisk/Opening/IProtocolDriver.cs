using UrlDisk.Specs;

namespace UrlDisk.Opening;

/// <summary>Opens a source (http, https, ftp, ftps, tftp, file) from a protocol node's options.</summary>
internal interface IProtocolDriver
{
    /// <summary>The <c>driver=</c> name.</summary>
    string Name { get; }

    /// <summary>URL schemes this driver takes from a plain filename (e.g. "http").</summary>
    IReadOnlyCollection<string> Schemes { get; }

    /// <summary>Every option this driver accepts (without <c>driver</c>).</summary>
    IReadOnlyCollection<string> OptionNames { get; }

    /// <summary>
    /// Opens the source. <paramref name="node"/> has <c>filename</c> already turned into this
    /// driver's own keys (<c>url</c> or <c>filename</c>).
    /// </summary>
    ValueTask<IBlockDevice> OpenAsync(OptionTree node, OpenContext context, CancellationToken cancellationToken);
}
