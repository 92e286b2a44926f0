using UrlDisk.Formats.Vdi;

namespace UrlDisk.Fuzz.Targets;

/// <summary>A vdi file checked as <c>urldisk check</c> checks it: a clear error or a result whose counts agree with its messages.</summary>
public sealed class VdiCheckTarget : IFuzzTarget
{
    public string Name => "vdi-check";

    public void Run(ReadOnlySpan<byte> input) => RunAsync(input.ToArray()).AsTask().GetAwaiter().GetResult();

    private static async ValueTask RunAsync(byte[] bytes)
    {
        try
        {
            var result = await VdiChecker.CheckAsync(new MemoryFile(bytes), CancellationToken.None);
            CheckResults.ThrowIfInconsistent(result);
        }
        catch (UrlDiskException)
        {
        }
    }
}
