using UrlDisk.Layers.Compressed;

namespace UrlDisk.Fuzz.Targets;

/// <summary>
/// An xz file: find its streams, indexes and blocks from the end, parse each block header, and decode blocks
/// through the random-access layer (liblzma behind our own bounds checks).
/// </summary>
public sealed class XzIndexTarget : IFuzzTarget
{
    public string Name => "xz-index";

    public void Run(ReadOnlySpan<byte> input)
    {
        var bytes = input.ToArray();
        try
        {
            XzBlockHeader.Parse(input, 0);
        }
        catch (UrlDiskException)
        {
        }

        RunAsync(bytes).AsTask().GetAwaiter().GetResult();
    }

    private static async ValueTask RunAsync(byte[] bytes)
    {
        IReadOnlyList<XzBlock> blocks;
        var file = new MemoryFile(bytes);
        try
        {
            blocks = await XzLayout.ReadAsync(file, CancellationToken.None);
        }
        catch (UrlDiskException)
        {
            return;
        }

        long offset = 0;
        foreach (var b in blocks)
        {
            if (b.UncompressedOffset != offset || b.UncompressedSize <= 0 || b.FileOffset < 12 || b.FileOffset >= bytes.Length)
            {
                throw new InvalidOperationException($"inconsistent block list: {b} after offset {offset}");
            }

            offset = b.UncompressedEnd;
        }

        // Decoding allocates each block whole: keep to small ones, within the runner's allocation limit per input.
        if (blocks.Count == 0 || blocks.Any(b => b.UncompressedSize > (4 << 20)))
        {
            return;
        }

        await using var device = new XzBlockDevice(file, blocks);
        var buffer = new byte[4096];
        foreach (var b in blocks.Take(8))
        {
            try
            {
                await device.ReadAsync(b.UncompressedOffset, buffer.AsMemory(0, (int)Math.Min(buffer.Length, b.UncompressedSize)));
            }
            catch (UrlDiskException)
            {
            }
        }
    }
}
