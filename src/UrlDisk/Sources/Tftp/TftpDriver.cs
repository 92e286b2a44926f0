using UrlDisk.Diagnostics;
using UrlDisk.Layers;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Sources.Tftp;

/// <summary><c>tftp://host[:port]/path</c>: read through a <see cref="FillCache"/>, since TFTP cannot fetch a byte range.</summary>
internal sealed class TftpDriver : IProtocolDriver
{
    public string Name => "tftp";

    public IReadOnlyCollection<string> Schemes { get; } = ["tftp"];

    public IReadOnlyCollection<string> OptionNames => TftpSettings.OptionNames;

    public async ValueTask<IBlockDevice> OpenAsync(OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        if (context.Writable)
        {
            throw new OptionException("tftp: TFTP sources are read-only; write to a local overlay instead");
        }

        var settings = TftpSettings.FromNode(node);
        var source = await TftpSource.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        return await FillCache.CreateAsync(source, new FillCacheOptions { Directory = context.CacheDirectory, KeepFile = settings.KeepCache, Logger = UrlDiskLogging.Create(context, "UrlDisk.Tftp") }, cancellationToken)
            .ConfigureAwait(false);
    }
}
