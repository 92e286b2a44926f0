using UrlDisk.Formats.Vhdx;
using UrlDisk.Opening;

namespace UrlDisk.Fuzz.Targets;

/// <summary>A whole VHDX file (in <see cref="SparseImage"/> form): headers, log replay, regions, metadata, BAT; then walk and read it.</summary>
public sealed class VhdxImageTarget : IFuzzTarget
{
    public string Name => "vhdx";

    public void Run(ReadOnlySpan<byte> input) => RunAsync(SparseImage.Decode(input)).AsTask().GetAwaiter().GetResult();

    private static async ValueTask RunAsync(byte[] bytes)
    {
        try
        {
            await using var image = await VhdxImage.OpenAsync(new MemoryFile(bytes), new OpenContext { NoBacking = true }, CancellationToken.None);
            await ImageWalk.RunAsync(image);
        }
        catch (UrlDiskException)
        {
        }
    }
}
