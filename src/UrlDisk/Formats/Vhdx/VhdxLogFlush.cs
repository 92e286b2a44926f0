using System.Buffers.Binary;

namespace UrlDisk.Formats.Vhdx;

/// <summary>
/// Writes a replayed log into the file, as QEMU does when it opens a dirty image writable (<c>qemu-img check -r</c>):
/// the logged pages (zeros for zero descriptors) go to their places, then both headers are rewritten in turn with a
/// higher sequence number, a new file write GUID and no log GUID, so the log is not replayed again. Each step is
/// flushed before the next: a crash part-way leaves the log in force and replaying it again gives the same pages.
/// </summary>
internal static class VhdxLogFlush
{
    private static readonly long[] HeaderOffsets = [64 * 1024, 128 * 1024];

    public static async ValueTask FlushAsync(IGrowableFile file, IReadOnlyDictionary<long, byte[]?> pages, CancellationToken cancellationToken)
    {
        var zeros = new byte[4096];
        foreach (var (offset, data) in pages.OrderBy(p => p.Key))
        {
            await file.WriteAtAsync(offset, data ?? zeros, cancellationToken).ConfigureAwait(false);
        }

        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        for (int step = 0; step < 2; step++)
        {
            var (active, activeAt) = await ReadActiveAsync(file, cancellationToken).ConfigureAwait(false);
            var next = active.ToArray();
            ulong sequence = BinaryPrimitives.ReadUInt64LittleEndian(next.AsSpan(8));
            BinaryPrimitives.WriteUInt64LittleEndian(next.AsSpan(8), sequence + 1);
            Guid.NewGuid().TryWriteBytes(next.AsSpan(16, 16));
            next.AsSpan(48, 16).Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(next.AsSpan(4), Crc32C.Compute(next, 4));
            long inactiveAt = activeAt == HeaderOffsets[0] ? HeaderOffsets[1] : HeaderOffsets[0];
            await file.WriteAtAsync(inactiveAt, next, cancellationToken).ConfigureAwait(false);
            await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The valid header with the higher sequence number, as the reader picks it, and where it is.</summary>
    private static async ValueTask<(byte[] Bytes, long At)> ReadActiveAsync(IBlockDevice file, CancellationToken cancellationToken)
    {
        (byte[] Bytes, long At, ulong Sequence)? best = null;
        foreach (long at in HeaderOffsets)
        {
            var bytes = new byte[VhdxHeader.Size];
            await file.ReadAsync(at, bytes, cancellationToken).ConfigureAwait(false);
            if (VhdxHeader.TryParse(bytes) is { } h && (best is null || h.Sequence > best.Value.Sequence))
            {
                best = (bytes, at, h.Sequence);
            }
        }

        return best is { } b ? (b.Bytes, b.At) : throw new ImageFormatException("vhdx: neither header (at offsets 65536 and 131072) has a valid signature and checksum");
    }
}
