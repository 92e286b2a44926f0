using System.Buffers.Binary;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Formats.Qcow2;

/// <summary>The qcow2 format (versions 2 and 3).</summary>
internal sealed class Qcow2FormatDriver : IFormatDriver
{
    public string Name => "qcow2";

    public IReadOnlyCollection<string> OptionNames { get; } = ["backing"];

    /// <summary>
    /// The qcow magic with any version but 0 (as QEMU probes): an unknown version is then refused by name
    /// ("Unsupported qcow2 version 4") instead of being read as a raw image.
    /// </summary>
    public int Probe(ReadOnlySpan<byte> head)
        => head.Length >= 8 && BinaryPrimitives.ReadUInt32BigEndian(head) == Qcow2Header.Magic
            && BinaryPrimitives.ReadUInt32BigEndian(head[4..]) != 0 ? 100 : 0;

    public async ValueTask<IBlockDevice> OpenAsync(IBlockDevice file, OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        node.RejectUnknown(Name, OptionNames);
        if (node["backing"] is { } backing)
        {
            // Only "backing": null (given as "") is understood: open without the backing chain.
            if (backing.Length != 0)
            {
                throw new OptionException("qcow2: option 'backing' may only be null (no backing file); other backing overrides are not supported");
            }

            context = context with { NoBacking = true };
        }

        return await Qcow2Image.OpenAsync(file, context, cancellationToken).ConfigureAwait(false);
    }
}
