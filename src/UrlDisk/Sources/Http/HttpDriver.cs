using UrlDisk.Layers;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Sources.Http;

/// <summary>
/// The <c>http</c> and <c>https</c> drivers: a bare <see cref="HttpSource"/>; for a server without byte ranges, its
/// whole-file transfer as a <see cref="SequentialSourceDevice"/> (the opener stacks a fill cache on it instead of
/// QEMU's hard error).
/// </summary>
internal sealed class HttpDriver(string name) : IProtocolDriver
{
    public string Name { get; } = name;

    public IReadOnlyCollection<string> Schemes { get; } = [name];

    public IReadOnlyCollection<string> OptionNames => HttpSourceOptions.Names;

    public SourceTraits Traits => SourceTraits.Remote | SourceTraits.Ranges | SourceTraits.Sequential;

    public ValueTask<IBlockDevice> OpenAsync(OptionTree node, OpenContext context, CancellationToken cancellationToken)
        => OpenAsync(Name, HttpSourceOptions.Parse(Name, node), context, cancellationToken);

    /// <summary>Opens a protocol node from typed options (specs and <see cref="ImageOpener"/>'s typed overload both end here).</summary>
    public static async ValueTask<IBlockDevice> OpenAsync(string name, HttpSourceOptions options, OpenContext context, CancellationToken cancellationToken)
    {
        var source = await HttpSource.OpenAsync(name, options, context, cancellationToken).ConfigureAwait(false);
        return source.SupportsRanges ? source : new SequentialSourceDevice(new HttpSequentialSource(source), options.Retries, "UrlDisk.Http");
    }
}
