using Microsoft.Extensions.Logging;
using UrlDisk.Diagnostics;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Layers;

/// <summary>
/// Stacks a <see cref="FillCache"/> on a source that cannot read byte ranges (it arrives as a
/// <see cref="SequentialSourceDevice"/>); owns <c>keep-cache</c> (keep the cache file after close).
/// </summary>
internal sealed class FillCacheLayer : LayerDriver<FillCacheLayer.Settings>
{
    internal sealed record Settings(bool KeepFile);

    public override string Name => "fill-cache";

    public override IReadOnlyCollection<string> OptionNames { get; } = ["keep-cache"];

    public override bool AppliesTo(SourceTraits traits) => (traits & SourceTraits.Sequential) != 0;

    public override Settings Validate(OptionTree node, string driver) => new(node.GetBool("keep-cache", false));

    public override async ValueTask<IBlockDevice> StackAsync(IBlockDevice below, Settings settings, LayerContext context, CancellationToken cancellationToken)
    {
        if (below is not SequentialSourceDevice sequential)
        {
            return below;
        }

        var logger = UrlDiskLogging.Create(context.Open, sequential.LogCategory);
        logger.LogInformation("{Protocol}: no byte ranges: one whole-file transfer into a fill cache in {Directory}", context.Driver, context.Open.CacheDirectory ?? "the temp directory");
        var options = new FillCacheOptions { Directory = context.Open.CacheDirectory, KeepFile = settings.KeepFile, Retries = sequential.Retries, Logger = logger };
        // The fill cache owns the source from here, on failure too; the placeholder is left holding nothing.
        var cache = await FillCache.CreateAsync(sequential.Take(), options, cancellationToken).ConfigureAwait(false);
        await sequential.DisposeAsync().ConfigureAwait(false);
        return cache;
    }
}
