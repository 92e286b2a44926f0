using UrlDisk.Layers;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Sources.Tftp;

/// <summary><c>tftp://host[:port]/path</c>: a <see cref="SequentialSourceDevice"/> the opener stacks a fill cache on, since TFTP cannot fetch a byte range.</summary>
internal sealed class TftpDriver : IProtocolDriver
{
    public string Name => "tftp";

    public IReadOnlyCollection<string> Schemes { get; } = ["tftp"];

    public IReadOnlyCollection<string> OptionNames => TftpSettings.OptionNames;

    public SourceTraits Traits => SourceTraits.Remote | SourceTraits.Sequential;

    public async ValueTask<IBlockDevice> OpenAsync(OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        if (context.Writable)
        {
            throw new OptionException("tftp: TFTP sources are read-only; write to a local overlay instead");
        }

        var settings = TftpSettings.FromNode(node);
        var source = await TftpSource.OpenAsync(settings, cancellationToken).ConfigureAwait(false);
        // TFTP retries lost packets itself; a failed whole transfer starts again as the fill cache's default allows.
        return new SequentialSourceDevice(source, new FillCacheOptions().Retries, "UrlDisk.Tftp");
    }
}
