using UrlDisk.Opening;
using UrlDisk.Operations;

namespace UrlDisk.Formats.Vhdx;

/// <summary>
/// <c>qemu-img check</c> for vhdx: each fully present BAT entry must not overflow, start before the end of the file
/// and end within it, and a payload block must not overlap the log, BAT or metadata regions. Like qemu-img, every
/// bad entry counts (the walk does not stop) and the only repair is replaying a log into the file (<c>-r</c>).
/// </summary>
internal static class VhdxChecker
{
    private const int FullyPresent = 6;
    private const ulong OffsetMask = 0xFFFFFFFFFFF00000UL;

    /// <summary>Checks the vhdx image in <paramref name="file"/> (the image file, not a format node); <paramref name="repair"/> is -r's value or null.</summary>
    public static async ValueTask<ImageCheckResult> CheckAsync(IBlockDevice file, string? repair, CancellationToken cancellationToken)
    {
        // The window keeps the caller's file open when the image is disposed; the parent of a differencing image is not needed.
        var context = new OpenContext { NoBacking = true };
        int replayed = 0;
        var image = await VhdxImage.OpenAsync(new ByteWindow(file, 0, file.Length), context, cancellationToken).ConfigureAwait(false);
        try
        {
            if (image.LogReplayed)
            {
                // qemu-img opens such an image only writable (with -r), replays the log into the file and counts one corruption fixed.
                if (repair is null)
                {
                    throw new ImageFormatException("vhdx: the image contains a log that needs to be replayed; to replay it into the file, run check -r all");
                }

                if (file is not IGrowableFile { Info.CanWrite: true } writable)
                {
                    throw new UrlDiskException("check: replaying the vhdx log needs the image opened for writing (a local file)");
                }

                await VhdxLogFlush.FlushAsync(writable, image.LogPages, cancellationToken).ConfigureAwait(false);
                await image.DisposeAsync().ConfigureAwait(false);
                image = await VhdxImage.OpenAsync(new ByteWindow(file, 0, file.Length), context, cancellationToken).ConfigureAwait(false);
                replayed = 1;
            }

            var messages = new List<string>();
            int corruptions = Walk(image, file.Length, messages);
            return new ImageCheckResult { Format = "vhdx", Corruptions = corruptions, CorruptionsFixed = replayed, Messages = messages };
        }
        finally
        {
            await image.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>qemu-img's rules, counted its way (see the class summary); returns the number of errors.</summary>
    private static int Walk(VhdxImage image, long fileSize, List<string> messages)
    {
        ulong blockSize = image.Metadata.BlockSize;
        ulong diskBytes = image.Metadata.VirtualDiskSize / 512 * 512;
        // qemu-img lists the log region first, then the region table's entries, and looks them up newest first.
        var regions = new List<(ulong Start, ulong End)> { (image.Header.LogOffset, image.Header.LogOffset + image.Header.LogLength) };
        regions.AddRange(image.Regions.Select(r => ((ulong)r.Offset, (ulong)r.Offset + (ulong)r.Length)));
        regions.Reverse();

        ulong size = (ulong)fileSize;
        // qemu-img counts fully present entries (not BAT positions) to tell payload blocks from sector bitmaps; kept so its messages match.
        ulong payblocks = (ulong)image.ChunkRatio;
        int errors = 0;
        var bat = image.Bat;
        for (int i = 0; i < bat.Length; i++)
        {
            if ((bat[i] & 7) != FullyPresent)
            {
                continue;
            }

            ulong offset = bat[i] & OffsetMask;
            ulong index = (ulong)i;
            ulong left = unchecked(diskBytes - (index * blockSize));
            ulong blockLength = Math.Min(blockSize, left);
            if (offset > long.MaxValue - blockSize)
            {
                messages.Add($"VHDX BAT entry {i} offset overflow.");
                errors++;
            }

            if (offset >= size)
            {
                messages.Add($"VHDX BAT entry {i} start offset {offset} points after end of file ({fileSize}). Image has probably been truncated.");
                errors++;
            }
            else if (unchecked(offset + blockLength) > size)
            {
                messages.Add($"VHDX BAT entry {i} end offset {unchecked(offset + blockLength - 1)} points after end of file ({fileSize}). Image has probably been truncated.");
                errors++;
            }

            if (payblocks-- != 0)
            {
                ulong end = unchecked(offset + blockSize);
                foreach (var (start, stop) in regions)
                {
                    if (!(offset >= stop || end <= start))
                    {
                        messages.Add($"VHDX region {offset}-{end} overlaps with region {start}-{stop}");
                        errors++;
                        break;
                    }
                }
            }
            else
            {
                payblocks = (ulong)image.ChunkRatio;
            }
        }

        return errors;
    }
}
