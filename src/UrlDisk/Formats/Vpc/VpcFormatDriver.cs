using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Formats.Vpc;

/// <summary>
/// The VHD format under qemu's name "vpc". Probed as qemu does, by the footer copy at offset 0 (dynamic and
/// differencing disks); a fixed disk has its footer only at the end, so it is probed there only when the file is
/// named <c>*.vhd</c> (<see cref="HasFixedFooterAsync"/>), and otherwise needs <c>-f vpc</c>.
/// </summary>
internal sealed class VpcFormatDriver : IFormatDriver
{
    public string Name => "vpc";

    public IReadOnlyCollection<string> OptionNames { get; } = [VpcSizeRule.OptionName, "backing"];

    public int Probe(ReadOnlySpan<byte> head) => VpcFooter.HasCookie(head) ? 100 : 0;

    /// <summary>
    /// Whether a file that no driver claimed by its head is a fixed VHD: named <c>*.vhd</c> (Azure's blobs are) and
    /// ending in a valid fixed-disk footer. qemu-img reads such a file as raw; the name check keeps the extra read
    /// of the last sector (one more request over a network) off every other raw image.
    /// </summary>
    internal static async ValueTask<bool> HasFixedFooterAsync(IBlockDevice file, CancellationToken cancellationToken)
    {
        string name = file.Info.DisplayName ?? "";
        int cut = name.IndexOfAny(['?', '#']);
        if (cut >= 0)
        {
            name = name[..cut];
        }

        if (!name.EndsWith(".vhd", StringComparison.OrdinalIgnoreCase) || file.Length < 2 * VpcFooter.Size || file.Length % 512 != 0)
        {
            return false;
        }

        var tail = new byte[VpcFooter.Size];
        await file.ReadAsync(file.Length - VpcFooter.Size, tail, cancellationToken).ConfigureAwait(false);
        try
        {
            return VpcFooter.Parse(tail, file.Length - VpcFooter.Size).DiskType == VpcDiskType.Fixed;
        }
        catch (ImageFormatException)
        {
            return false;
        }
    }

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
