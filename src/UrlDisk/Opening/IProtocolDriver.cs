using UrlDisk.Specs;

namespace UrlDisk.Opening;

/// <summary>Opens a source (http, https, ftp, ftps, tftp, file) from a protocol node's options.</summary>
internal interface IProtocolDriver
{
    /// <summary>The <c>driver=</c> name.</summary>
    string Name { get; }

    /// <summary>URL schemes this driver takes from a plain filename (e.g. "http").</summary>
    IReadOnlyCollection<string> Schemes { get; }

    /// <summary>Every option the source itself takes (without <c>driver</c>); layers declare their own.</summary>
    IReadOnlyCollection<string> OptionNames { get; }

    /// <summary>What this driver's sources can be, so the opener knows which layers (and their options) apply.</summary>
    SourceTraits Traits { get; }

    /// <summary>
    /// Opens the bare source; the opener stacks the layers. <paramref name="node"/> has <c>filename</c> already turned
    /// into this driver's own keys (<c>url</c> or <c>filename</c>) and holds no layer's options. A source that cannot
    /// read byte ranges is returned as a <see cref="Layers.SequentialSourceDevice"/>.
    /// </summary>
    ValueTask<IBlockDevice> OpenAsync(OptionTree node, OpenContext context, CancellationToken cancellationToken);
}
