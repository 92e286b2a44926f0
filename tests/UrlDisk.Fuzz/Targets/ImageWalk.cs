namespace UrlDisk.Fuzz.Targets;

/// <summary>What info, map and convert do with an opened image, bounded: walk the extents and read from each.</summary>
internal static class ImageWalk
{
    private const int MaxExtentCalls = 32;
    private const int ReadSize = 64 * 1024;

    public static async ValueTask RunAsync(IBlockDevice image)
    {
        var buffer = new byte[ReadSize];
        long offset = 0;
        for (int calls = 0; calls < MaxExtentCalls && offset < image.Length; calls++)
        {
            IReadOnlyList<Extent> extents;
            try
            {
                extents = await image.GetExtentsAsync(offset, image.Length - offset);
            }
            catch (UrlDiskException)
            {
                return;
            }

            if (extents.Count == 0 || extents[0].Offset != offset || extents.Any(e => e.Length <= 0))
            {
                throw new InvalidOperationException($"extents at {offset} do not start there: {string.Join(", ", extents)}");
            }

            foreach (var e in extents.Take(4))
            {
                int n = (int)Math.Min(e.Length, ReadSize);
                try
                {
                    await image.ReadAsync(e.Offset, buffer.AsMemory(0, n));
                }
                catch (UrlDiskException)
                {
                    // A malformed table or block is reported for this read; the image stays usable for others.
                }
            }

            offset = extents[^1].End;
        }
    }
}
