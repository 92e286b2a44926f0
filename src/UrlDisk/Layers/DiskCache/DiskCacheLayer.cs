using UrlDisk.Opening;
using UrlDisk.Sources;
using UrlDisk.Specs;

namespace UrlDisk.Layers.DiskCache;

/// <summary>
/// Stacks the persistent <see cref="DiskCache"/> over a remote source that reads byte ranges, below the readahead
/// cache; owns <c>cache-dir</c> and <c>cache-max</c> (see <see cref="DiskCacheSettings"/>). Sources without ranges go
/// through the temporary fill cache instead, which this layer leaves alone.
/// </summary>
internal sealed class DiskCacheLayer : LayerDriver<DiskCacheSettings>
{
    public override string Name => "disk-cache";

    public override IReadOnlyCollection<string> OptionNames => DiskCacheSettings.OptionNames;

    public override bool AppliesTo(SourceTraits traits) => (traits & (SourceTraits.Remote | SourceTraits.Ranges)) == (SourceTraits.Remote | SourceTraits.Ranges);

    public override DiskCacheSettings Validate(OptionTree node, string driver) => DiskCacheSettings.FromNode(driver, node);

    public override ValueTask<IBlockDevice> StackAsync(IBlockDevice below, DiskCacheSettings settings, LayerContext context, CancellationToken cancellationToken)
    {
        var logger = Diagnostics.UrlDiskLogging.Create(context.Open, "UrlDisk.DiskCache");
        if (!settings.Enabled || LayerContext.Find<IRemoteRangeSource>(below) is null)
        {
            if (settings.Enabled)
            {
                Microsoft.Extensions.Logging.LoggerExtensions.LogInformation(logger,
                    "{Protocol}: the disk cache keeps blocks of files read by range only; this whole-file transfer is not kept", context.Driver);
            }

            return new(below);
        }

        return new(DiskCache.Wrap(below, settings, logger));
    }
}
