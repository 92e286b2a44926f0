using Microsoft.Extensions.Logging;
using UrlDisk.Diagnostics;
using UrlDisk.Layers;
using UrlDisk.Layers.DiskCache;
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

    public ValueTask<IBlockDevice> OpenAsync(OptionTree node, OpenContext context, CancellationToken cancellationToken)
        => OpenAsync(Name, HttpSourceOptions.Parse(Name, node), context, cancellationToken, DiskCacheSettings.FromNode(Name, node));

    /// <summary>Opens a protocol node from typed options (specs and <see cref="ImageOpener"/>'s typed overload both end here).</summary>
    public static async ValueTask<IBlockDevice> OpenAsync(string name, HttpSourceOptions options, OpenContext context, CancellationToken cancellationToken, DiskCacheSettings? diskCache = null)
    {
        diskCache ??= DiskCacheSettings.Default;
        var source = await HttpSource.OpenAsync(name, options, context, cancellationToken).ConfigureAwait(false);
        var logger = UrlDiskLogging.Create(context, "UrlDisk.Http");
        if (!source.SupportsRanges)
        {
            logger.LogInformation("{Protocol}: no byte ranges: one whole-file transfer into a fill cache in {Directory}", name, context.CacheDirectory ?? "the temp directory");
            if (diskCache.Enabled)
            {
                logger.LogInformation("{Protocol}: the disk cache keeps blocks of files read by range only; this whole-file transfer is not kept", name);
            }

            var fillOptions = new FillCacheOptions { Directory = context.CacheDirectory, Retries = options.Retries, Logger = logger };
            return await FillCache.CreateAsync(new HttpSequentialSource(source), fillOptions, cancellationToken).ConfigureAwait(false);
        }

        logger.LogDebug("{Protocol}: read cache of {CacheSize} bytes with {Readahead} bytes of readahead", name, options.CacheSize, options.Readahead);
        return new ReadaheadCache(await DiskCache.WrapAsync(source, diskCache, context).ConfigureAwait(false), options.Readahead, options.CacheSize);
    }
}
