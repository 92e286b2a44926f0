using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Sources.Nbd;

/// <summary>
/// <c>nbd://host[:port]/export</c>, <c>nbd+tcp://…</c> and <c>nbd+unix:///export?socket=PATH</c>, as qemu-img takes them
/// (also as <c>server.*</c>/<c>host</c>/<c>port</c>/<c>path</c>/<c>export</c> options), and with TLS <c>nbds://</c> and <c>nbds+unix://</c>:
/// an export of another NBD server (qemu-nbd, nbdkit, urldisk serve) read as a source.
/// </summary>
internal sealed class NbdDriver : IProtocolDriver
{
    public string Name => "nbd";

    public IReadOnlyCollection<string> Schemes { get; } = ["nbd", "nbd+tcp", "nbd+unix", "nbds", "nbds+tcp", "nbds+unix"];

    public IReadOnlyCollection<string> OptionNames => NbdSpec.Names;

    /// <summary>Remote, but the server is the block layer: no cache layer stacks on it (as QEMU's nbd driver has none).</summary>
    public SourceTraits Traits => SourceTraits.Remote;

    public async ValueTask<IBlockDevice> OpenAsync(OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        if (context.Writable)
        {
            throw new OptionException("nbd: NBD sources are read-only here; write to a local qcow2 overlay instead");
        }

        var address = NbdSpec.AddressOf(node);
        var client = await NbdClient.ConnectAsync(address, cancellationToken).ConfigureAwait(false);
        return new NbdSource(client);
    }
}
