using UrlDisk.Formats.Vmdk;
using UrlDisk.Opening;

namespace UrlDisk.Fuzz.Targets;

/// <summary>
/// A vmdk file checked as <c>urldisk check</c> checks it (a sparse extent; a descriptor's extents cannot be opened
/// here but ZERO ones): a clear error, or a result whose counts agree with its messages.
/// </summary>
public sealed class VmdkCheckTarget : IFuzzTarget
{
    public string Name => "vmdk-check";

    public void Run(ReadOnlySpan<byte> input) => RunAsync(input.ToArray()).AsTask().GetAwaiter().GetResult();

    private static async ValueTask RunAsync(byte[] bytes)
    {
        try
        {
            var result = await VmdkChecker.CheckAsync(new MemoryFile(bytes), new OpenContext(), CancellationToken.None);
            CheckResults.ThrowIfInconsistent(result);
            if (result.Failure is not null && result.Messages.Count != 1)
            {
                throw new InvalidOperationException("a failed vmdk check names exactly the grain it stopped at");
            }
        }
        catch (UrlDiskException)
        {
        }
    }
}
