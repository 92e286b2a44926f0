using UrlDisk.Layers;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Sources.Http;

/// <summary>
/// The <c>http</c> and <c>https</c> drivers: an <see cref="HttpSource"/> under a <see cref="ReadaheadCache"/>;
/// for a server without byte ranges, one whole-file transfer into a <see cref="FillCache"/> instead of QEMU's hard error.
/// </summary>
internal sealed class HttpDriver(string name) : IProtocolDriver
{
    public string Name { get; } = name;

    public IReadOnlyCollection<string> Schemes { get; } = [name];

    public IReadOnlyCollection<string> OptionNames => HttpSourceOptions.Names;

    public async ValueTask<IBlockDevice> OpenAsync(OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        var options = HttpSourceOptions.Parse(Name, node);
        var source = await HttpSource.OpenAsync(Name, options, cancellationToken).ConfigureAwait(false);
        if (!source.SupportsRanges)
        {
            var fillOptions = new FillCacheOptions { Directory = context.CacheDirectory, Retries = options.Retries };
            return await FillCache.CreateAsync(new HttpSequentialSource(source), fillOptions, cancellationToken).ConfigureAwait(false);
        }

        return new ReadaheadCache(source, options.Readahead, options.CacheSize);
    }
}
