using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.Fuzz.Targets;

/// <summary>
/// A whole qcow2 file: open it (no backing chain), walk its allocation map, read from it and check it, as
/// <c>info</c>, <c>map</c>, <c>convert</c> and <c>check</c> would. Bounded work per input.
/// </summary>
public sealed class Qcow2ImageTarget : IFuzzTarget
{
    private const int MaxExtentCalls = 32;
    private const int ReadSize = 64 * 1024;

    public string Name => "qcow2-image";

    public void Run(ReadOnlySpan<byte> input) => RunAsync(input.ToArray()).AsTask().GetAwaiter().GetResult();

    private static async ValueTask RunAsync(byte[] bytes)
    {
        var file = new MemoryFile(bytes);
        try
        {
            await using var image = await Qcow2Image.OpenAsync(file, new OpenContext { NoBacking = true }, CancellationToken.None);
            var buffer = new byte[ReadSize];
            long offset = 0;
            for (int calls = 0; calls < MaxExtentCalls && offset < image.Length; calls++)
            {
                var extents = await image.GetExtentsAsync(offset, image.Length - offset);
                if (extents.Count == 0 || extents[0].Offset != offset || extents[0].Length <= 0)
                {
                    throw new InvalidOperationException($"extents at {offset} do not start there: {string.Join(", ", extents)}");
                }

                foreach (var e in extents.Take(4))
                {
                    int n = (int)Math.Min(e.Length, ReadSize);
                    await ReadExpectingTypedErrorsAsync(image, e.Offset, buffer.AsMemory(0, n));
                }

                offset = extents[^1].Offset + extents[^1].Length;
            }
        }
        catch (UrlDiskException)
        {
        }

        await Qcow2Checker.CheckAsync(file, null, CancellationToken.None);
    }

    private static async ValueTask ReadExpectingTypedErrorsAsync(IBlockDevice image, long offset, Memory<byte> buffer)
    {
        try
        {
            await image.ReadAsync(offset, buffer);
        }
        catch (UrlDiskException)
        {
            // A malformed table or cluster is reported for this read; the image stays usable for others.
        }
    }
}
