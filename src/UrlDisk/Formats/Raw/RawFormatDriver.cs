using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Formats.Raw;

/// <summary>The raw format: the image is the bytes of the file, optionally a window of it (<c>offset</c>, <c>size</c>).</summary>
internal sealed class RawFormatDriver : IFormatDriver
{
    public string Name => "raw";

    public IReadOnlyCollection<string> OptionNames { get; } = ["offset", "size"];

    public int Probe(ReadOnlySpan<byte> head) => 1;

    public ValueTask<IBlockDevice> OpenAsync(IBlockDevice file, OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        node.RejectUnknown(Name, OptionNames);
        long offset = node.GetSize("offset", 0);
        long size = node.GetSize("size", file.Length - Math.Min(offset, file.Length));
        if (offset > file.Length || size > file.Length - offset)
        {
            throw new OptionException($"raw: offset {offset} + size {size} is past the end of the file ({file.Length} bytes)");
        }

        return new(new RawImage(file, offset, size));
    }
}
