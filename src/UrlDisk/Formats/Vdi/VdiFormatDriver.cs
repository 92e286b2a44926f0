using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Formats.Vdi;

/// <summary>The vdi format (VirtualBox): static and dynamic images, version 1.1.</summary>
internal sealed class VdiFormatDriver : IFormatDriver
{
    public string Name => "vdi";

    public IReadOnlyCollection<string> OptionNames { get; } = [];

    public int Probe(ReadOnlySpan<byte> head) => VdiHeader.HasSignature(head) ? 100 : 0;

    public async ValueTask<IBlockDevice> OpenAsync(IBlockDevice file, OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        node.RejectUnknown(Name, OptionNames);
        return await VdiImage.OpenAsync(file, cancellationToken).ConfigureAwait(false);
    }
}
