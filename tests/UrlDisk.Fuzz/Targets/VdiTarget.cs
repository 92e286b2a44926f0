using UrlDisk.Formats.Vdi;

namespace UrlDisk.Fuzz.Targets;

/// <summary>A vdi file: header and block map read as the driver reads them, then walked.</summary>
public sealed class VdiTarget : IFuzzTarget
{
    public string Name => "vdi";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (!VdiHeader.TryRead(input, out _, out string? error) && string.IsNullOrEmpty(error))
        {
            throw new InvalidOperationException("a refused header must say why");
        }

        RunAsync(input.ToArray()).AsTask().GetAwaiter().GetResult();
    }

    private static async ValueTask RunAsync(byte[] bytes)
    {
        try
        {
            await using var image = await VdiImage.OpenAsync(new MemoryFile(bytes), CancellationToken.None);
            await ImageWalk.RunAsync(image);
        }
        catch (UrlDiskException)
        {
        }
    }
}
