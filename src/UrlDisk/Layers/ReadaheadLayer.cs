using Microsoft.Extensions.Logging;
using UrlDisk.Diagnostics;
using UrlDisk.Opening;
using UrlDisk.Sources;
using UrlDisk.Specs;

namespace UrlDisk.Layers;

/// <summary>
/// Stacks a <see cref="ReadaheadCache"/> on every source that fetches byte ranges over the network; owns
/// <c>readahead</c> (bytes fetched ahead of a read) and <c>cache-size</c> (bytes the cache keeps). <c>readahead=0</c>
/// stacks nothing: every read is then one request for exactly its bytes.
/// </summary>
internal sealed class ReadaheadLayer : LayerDriver<ReadaheadLayer.Settings>
{
    /// <summary>The default <c>readahead</c>: 256 KiB.</summary>
    public const long DefaultReadahead = 256 * 1024;

    /// <summary>The default <c>cache-size</c>: 32 MiB.</summary>
    public const long DefaultCacheSize = 32L << 20;

    internal sealed record Settings(long Readahead, long CacheSize);

    public override string Name => "readahead-cache";

    public override IReadOnlyCollection<string> OptionNames { get; } = ["readahead", "cache-size"];

    public override bool AppliesTo(SourceTraits traits) => (traits & (SourceTraits.Remote | SourceTraits.Ranges)) == (SourceTraits.Remote | SourceTraits.Ranges);

    public override Settings Validate(OptionTree node, string driver)
    {
        long readahead = node.GetSize("readahead", DefaultReadahead);
        if (readahead % 512 != 0)
        {
            throw new OptionException($"{driver}: readahead {readahead} is not a multiple of 512 (sizes take T/G/M/K/k/b suffixes; default 256k)");
        }

        if (readahead > 256L << 20)
        {
            throw new OptionException($"{driver}: readahead {readahead} is too large; at most 256M");
        }

        return new Settings(readahead, node.GetSize("cache-size", DefaultCacheSize));
    }

    public override ValueTask<IBlockDevice> StackAsync(IBlockDevice below, Settings settings, LayerContext context, CancellationToken cancellationToken)
    {
        if (settings.Readahead == 0 || LayerContext.Find<IRemoteRangeSource>(below) is null)
        {
            return new(below);
        }

        UrlDiskLogging.Create(context.Open, "UrlDisk.Readahead")
            .LogDebug("{Protocol}: read cache of {CacheSize} bytes with {Readahead} bytes of readahead", context.Driver, settings.CacheSize, settings.Readahead);
        return new(new ReadaheadCache(below, settings.Readahead, settings.CacheSize));
    }
}
