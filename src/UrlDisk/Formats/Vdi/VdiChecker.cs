using System.Buffers;
using System.Buffers.Binary;
using System.Collections;

namespace UrlDisk.Formats.Vdi;

/// <summary>
/// <c>qemu-img check</c> for vdi: every allocated block map entry must name a block below the header's block count,
/// no two entries may name the same block, and the header's allocated count must match the map. The map is
/// streamed in pieces; only a bit per block is kept. VDI has no repair (qemu-img says "does not support checks").
/// </summary>
internal static class VdiChecker
{
    private const int ChunkEntries = 16 * 1024;

    /// <summary>Checks the vdi image in <paramref name="file"/> (the image file, not a format node).</summary>
    public static async ValueTask<ImageCheckResult> CheckAsync(IBlockDevice file, CancellationToken cancellationToken)
    {
        if (file.Length < VdiHeader.Size)
        {
            throw new ImageFormatException($"vdi: the file is {file.Length} bytes, shorter than the 512-byte header");
        }

        var head = new byte[VdiHeader.Size];
        await file.ReadAsync(0, head, cancellationToken).ConfigureAwait(false);
        if (!VdiHeader.TryRead(head, out var header, out string? error))
        {
            throw new ImageFormatException("vdi: " + error);
        }

        uint blocks = header.BlocksInImage;
        long mapBytes = blocks * 4L;
        if (header.OffsetBmap > file.Length || mapBytes > file.Length - header.OffsetBmap)
        {
            throw new ImageFormatException($"vdi: the block map at offset {header.OffsetBmap} ({blocks} entries) does not fit in the file ({file.Length} bytes)");
        }

        var messages = new List<string>();
        int corruptions = 0;
        uint allocated = 0;
        var used = new BitArray((int)blocks);
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkEntries * 4);
        try
        {
            for (uint first = 0; first < blocks; first += ChunkEntries)
            {
                int count = (int)Math.Min(ChunkEntries, blocks - first);
                await file.ReadAsync(header.OffsetBmap + (first * 4L), buffer.AsMemory(0, count * 4), cancellationToken).ConfigureAwait(false);
                for (int i = 0; i < count; i++)
                {
                    uint entry = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(i * 4));
                    if (entry >= VdiHeader.FirstUnallocated)
                    {
                        continue;
                    }

                    if (entry >= blocks)
                    {
                        messages.Add($"ERROR: block index {first + i} too large, is {entry}");
                        corruptions++;
                        continue;
                    }

                    allocated++;
                    if (used[(int)entry])
                    {
                        // qemu-img names the block twice here (the first user is not kept); its words are kept.
                        messages.Add($"ERROR: block index {entry} also used by {entry}");
                        corruptions++;
                    }

                    used[(int)entry] = true;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        if (allocated != header.BlocksAllocated)
        {
            messages.Add($"ERROR: allocated blocks mismatch, is {allocated}, should be {header.BlocksAllocated}");
            corruptions++;
        }

        return new ImageCheckResult { Format = "vdi", Corruptions = corruptions, Messages = messages };
    }
}
