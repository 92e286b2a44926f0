using UrlDisk.Formats.Vhdx;

namespace UrlDisk.Fuzz.Targets;

/// <summary>A whole VHDX file (in <see cref="SparseImage"/> form) checked as <c>urldisk check</c> checks it, without and with <c>-r all</c>.</summary>
public sealed class VhdxCheckTarget : IFuzzTarget
{
    public string Name => "vhdx-check";

    public void Run(ReadOnlySpan<byte> input) => RunAsync(SparseImage.Decode(input)).AsTask().GetAwaiter().GetResult();

    private static async ValueTask RunAsync(byte[] bytes)
    {
        foreach (string? repair in new[] { null, "all" })
        {
            try
            {
                var result = await VhdxChecker.CheckAsync(new MemoryFile(bytes), repair, CancellationToken.None);
                CheckResults.ThrowIfInconsistent(result);
            }
            catch (UrlDiskException)
            {
            }
        }
    }
}
