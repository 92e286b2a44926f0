using UrlDisk.Specs;

namespace UrlDisk.Opening;

/// <summary>Interprets the bytes of a source as a disk image (raw, qcow2, …).</summary>
internal interface IFormatDriver
{
    string Name { get; }

    /// <summary>Options of the format node itself (without <c>driver</c> and <c>file</c>).</summary>
    IReadOnlyCollection<string> OptionNames { get; }

    /// <summary>How sure this driver is that <paramref name="head"/> (the first bytes, up to 64 KiB) is its format: 0 = no, 100 = certain.</summary>
    int Probe(ReadOnlySpan<byte> head);

    /// <summary>Opens the image stored in <paramref name="file"/>; takes ownership of it.</summary>
    ValueTask<IBlockDevice> OpenAsync(IBlockDevice file, OptionTree node, OpenContext context, CancellationToken cancellationToken);
}
