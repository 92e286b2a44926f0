using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Formats.Vpc;

/// <summary>
/// The VHD format under qemu's name "vpc". Probed as qemu does, by the footer copy at offset 0 (dynamic and
/// differencing disks); a fixed disk has its footer only at the end and needs <c>-f vpc</c>.
/// </summary>
internal sealed class VpcFormatDriver : IFormatDriver
{
    public string Name => "vpc";

    public IReadOnlyCollection<string> OptionNames { get; } = [VpcSizeRule.OptionName, "backing"];

    public int Probe(ReadOnlySpan<byte> head) => VpcFooter.HasCookie(head) ? 100 : 0;

    public async ValueTask<IBlockDevice> OpenAsync(IBlockDevice file, OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        node.RejectUnknown(Name, OptionNames);
        if (node["backing"] is { } backing)
        {
            if (backing.Length != 0)
            {
                throw new OptionException("vpc: option 'backing' may only be null (no parent); other parent overrides are not supported");
            }

            context = context with { NoBacking = true };
        }

        string? force = node[VpcSizeRule.OptionName];
        VpcSizeRule.UsesCurrentSize(new VpcFooter(), force); // rejects a bad value before any I/O
        return await VpcImage.OpenAsync(file, force, context, cancellationToken).ConfigureAwait(false);
    }
}
