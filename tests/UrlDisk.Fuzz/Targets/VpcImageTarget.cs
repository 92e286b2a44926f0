using UrlDisk.Formats.Vpc;
using UrlDisk.Opening;

namespace UrlDisk.Fuzz.Targets;

/// <summary>A whole VHD file (in <see cref="SparseImage"/> form): open it without its parent, walk and read it.</summary>
public sealed class VpcImageTarget : IFuzzTarget
{
    public string Name => "vpc";

    public void Run(ReadOnlySpan<byte> input) => RunAsync(SparseImage.Decode(input)).AsTask().GetAwaiter().GetResult();

    private static async ValueTask RunAsync(byte[] bytes)
    {
        try
        {
            await using var image = await VpcImage.OpenAsync(new MemoryFile(bytes), null, new OpenContext { NoBacking = true }, CancellationToken.None);
            await ImageWalk.RunAsync(image);
        }
        catch (UrlDiskException)
        {
        }
    }
}
