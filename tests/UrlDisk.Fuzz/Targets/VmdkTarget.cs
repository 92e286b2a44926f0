using UrlDisk.Formats.Vmdk;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Fuzz.Targets;

/// <summary>
/// A vmdk file: the descriptor parser on the bytes as text, then the file opened as the vmdk driver opens it (a
/// sparse extent with its embedded descriptor, or a descriptor whose extents cannot be opened here but ZERO ones)
/// and walked. No parent is opened.
/// </summary>
public sealed class VmdkTarget : IFuzzTarget
{
    public string Name => "vmdk";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (VmdkDescriptor.TryParse(input, out var descriptor, out string? error))
        {
            if (descriptor.Extents.Any(e => e.Sectors < 0 || e.Offset < 0))
            {
                throw new InvalidOperationException("accepted a descriptor with a negative extent");
            }
        }
        else if (string.IsNullOrEmpty(error))
        {
            throw new InvalidOperationException("a refused descriptor must say why");
        }

        RunAsync(input.ToArray()).AsTask().GetAwaiter().GetResult();
    }

    private static async ValueTask RunAsync(byte[] bytes)
    {
        try
        {
            await using var image = await new VmdkFormatDriver().OpenAsync(new MemoryFile(bytes), new OptionTree(), new OpenContext { NoBacking = true }, CancellationToken.None);
            await ImageWalk.RunAsync(image);
        }
        catch (UrlDiskException)
        {
        }
    }
}
