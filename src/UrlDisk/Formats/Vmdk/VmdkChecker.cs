using System.Buffers;
using System.Buffers.Binary;
using UrlDisk.Opening;
using UrlDisk.Operations;
using UrlDisk.Specs;

namespace UrlDisk.Formats.Vmdk;

/// <summary>
/// <c>qemu-img check</c> for vmdk: walks the grains of every sparse extent in disk order and stops at the first
/// allocated grain that starts at or past the end of its extent file, which qemu-img reports as a failed check
/// ("Invalid argument", exit 1) rather than a count. Grain tables past the end read as zeros (unallocated), as
/// qemu-img reads them. Flat and zero extents have nothing to check. qemu-img has no vmdk repair.
/// </summary>
internal static class VmdkChecker
{
    /// <summary>Grain tables whose verdict is remembered (a directory may name one table many times); cleared when full.</summary>
    private const int MaxRememberedTables = 1 << 20;

    /// <summary>
    /// Checks the vmdk image in <paramref name="file"/> (a sparse file or a descriptor; the descriptor's extent files
    /// are opened through <paramref name="context"/>).
    /// </summary>
    public static async ValueTask<ImageCheckResult> CheckAsync(IBlockDevice file, OpenContext context, CancellationToken cancellationToken)
    {
        // The window keeps the caller's file open when the image (and the extent files it opened) are disposed.
        await using var device = await new VmdkFormatDriver().OpenAsync(new ByteWindow(file, 0, file.Length), new OptionTree(), context with { NoBacking = true }, cancellationToken).ConfigureAwait(false);
        var image = (VmdkImage)device;
        long startSector = 0;
        foreach (var extent in image.Extents)
        {
            if (extent is SparseExtent sparse && await FirstBadGrainAsync(sparse, cancellationToken).ConfigureAwait(false) is { } grain)
            {
                long sector = startSector + (grain * (long)sparse.Header.GrainSize);
                return new ImageCheckResult
                {
                    Format = "vmdk",
                    Corruptions = 1,
                    Messages = [$"ERROR: cluster offset for sector {sector} points after EOF"],
                    Failure = "Invalid argument",
                };
            }

            startSector += extent.Length / 512;
        }

        return new ImageCheckResult { Format = "vmdk" };
    }

    /// <summary>The first grain of <paramref name="extent"/> (in order) whose data starts at or past its file's end, or null.</summary>
    private static async ValueTask<long?> FirstBadGrainAsync(SparseExtent extent, CancellationToken cancellationToken)
    {
        var h = extent.Header;
        long perTable = h.NumGtesPerGt;
        long grains = (extent.Length + h.GrainBytes - 1) / h.GrainBytes;
        var verdicts = new Dictionary<uint, int>();
        var raw = ArrayPool<byte>.Shared.Rent((int)perTable * 4);
        try
        {
            int tables = extent.GrainDirectory.Length;
            for (int g = 0; g < tables && g * perTable < grains; g++)
            {
                uint gtSector = extent.GrainDirectory[g];
                if (gtSector == 0)
                {
                    continue;
                }

                if (!verdicts.TryGetValue(gtSector, out int bad))
                {
                    bad = await FirstBadEntryAsync(extent, gtSector, raw, cancellationToken).ConfigureAwait(false);
                    if (verdicts.Count >= MaxRememberedTables)
                    {
                        verdicts.Clear();
                    }

                    verdicts[gtSector] = bad;
                }

                if (bad >= 0 && (g * perTable) + bad < grains)
                {
                    return (g * perTable) + bad;
                }
            }

            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(raw);
        }
    }

    /// <summary>The index of the first entry of the grain table at <paramref name="gtSector"/> pointing at or past the file's end, or -1.</summary>
    private static async ValueTask<int> FirstBadEntryAsync(SparseExtent extent, uint gtSector, byte[] raw, CancellationToken cancellationToken)
    {
        var file = extent.File;
        int bytes = (int)extent.Header.NumGtesPerGt * 4;
        long at = gtSector * 512L;
        // What lies past the end of the file reads as zeros: unallocated grains.
        int inFile = (int)Math.Clamp(file.Length - at, 0, bytes);
        if (inFile > 0)
        {
            await file.ReadAsync(at, raw.AsMemory(0, inFile), cancellationToken).ConfigureAwait(false);
        }

        bool zeroedGrains = extent.Header.HasZeroedGrainGte;
        for (int j = 0; j < inFile / 4; j++)
        {
            uint gte = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(j * 4));
            if (gte == 0 || (gte == 1 && zeroedGrains))
            {
                continue;
            }

            if (gte * 512L >= file.Length)
            {
                return j;
            }
        }

        return -1;
    }
}
