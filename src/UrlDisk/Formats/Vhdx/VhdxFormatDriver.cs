using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Formats.Vhdx;

/// <summary>The VHDX format, probed (as qemu does) by its file identifier "vhdxfile".</summary>
internal sealed class VhdxFormatDriver : IFormatDriver
{
    public string Name => "vhdx";

    public IReadOnlyCollection<string> OptionNames { get; } = ["backing"];

    public int Probe(ReadOnlySpan<byte> head) => head.StartsWith("vhdxfile"u8) ? 100 : 0;

    public async ValueTask<IBlockDevice> OpenAsync(IBlockDevice file, OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        node.RejectUnknown(Name, OptionNames);
        if (node["backing"] is { } backing)
        {
            if (backing.Length != 0)
            {
                throw new OptionException("vhdx: option 'backing' may only be null (no parent); other parent overrides are not supported");
            }

            context = context with { NoBacking = true };
        }

        return await VhdxImage.OpenAsync(file, context, cancellationToken).ConfigureAwait(false);
    }
}
