using System.Buffers.Binary;

namespace UrlDisk.Formats.Vhdx;

/// <summary>
/// Replays a dirty VHDX log into memory (MS-VHDX §2.3): the 4 KiB pages its entries would write, to be laid over
/// the file by every later read. The file itself is never written, so a read-only open of a dirty image works
/// where qemu-img refuses it.
/// </summary>
internal static class VhdxLog
{
    private const int Page = 4096;

    /// <summary>Bound on replayed pages (a 1 GiB overlay).</summary>
    private const int MaxPages = 1 << 18;

    private readonly record struct Entry(long Offset, uint Length, uint Tail, ulong Sequence);

    /// <summary>Page offset → contents (null = zeros) of the active log sequence; empty when nothing needs replaying.</summary>
    public static Dictionary<long, byte[]?> Replay(ReadOnlySpan<byte> log, long logOffset, Guid logGuid)
    {
        var pages = new Dictionary<long, byte[]?>();
        var entries = new Dictionary<long, Entry>();
        for (long at = 0; at + Page <= log.Length; at += Page)
        {
            if (TryReadEntry(log, at, logGuid) is { } e)
            {
                entries[at] = e;
            }
        }

        if (entries.Count == 0)
        {
            return pages;
        }

        // The head: the valid entry with the highest sequence number; replay from its tail up to it.
        var head = entries.Values.MaxBy(e => e.Sequence);
        var chain = new List<Entry>();
        long pos = head.Tail;
        for (int guard = 0; guard <= entries.Count; guard++)
        {
            if (!entries.TryGetValue(pos, out var e) || (chain.Count > 0 && e.Sequence != chain[^1].Sequence + 1))
            {
                throw new ImageFormatException($"vhdx: log at offset {logOffset}: the sequence from the tail at {logOffset + head.Tail} to entry {head.Sequence} is broken at {logOffset + pos}");
            }

            chain.Add(e);
            if (e.Sequence == head.Sequence)
            {
                break;
            }

            pos = (pos + e.Length) % log.Length;
        }

        if (chain[^1].Sequence != head.Sequence)
        {
            throw new ImageFormatException($"vhdx: log at offset {logOffset}: the tail never reaches entry {head.Sequence}");
        }

        foreach (var e in chain)
        {
            Apply(log, e, logOffset, pages);
        }

        return pages;
    }

    /// <summary>The entry at <paramref name="at"/> if its signature, log GUID and checksum are right (wrapping around the log).</summary>
    private static Entry? TryReadEntry(ReadOnlySpan<byte> log, long at, Guid logGuid)
    {
        var h = log.Slice((int)at, 64);
        if (!h[..4].SequenceEqual("loge"u8) || new Guid(h.Slice(32, 16)) != logGuid)
        {
            return null;
        }

        uint length = BinaryPrimitives.ReadUInt32LittleEndian(h[8..]);
        uint tail = BinaryPrimitives.ReadUInt32LittleEndian(h[12..]);
        if (length == 0 || length % Page != 0 || length > log.Length || tail % Page != 0 || tail >= log.Length)
        {
            return null;
        }

        var bytes = Contiguous(log, at, (int)length);
        return Crc32C.Matches(bytes, 4) ? new Entry(at, length, tail, BinaryPrimitives.ReadUInt64LittleEndian(h[16..])) : null;
    }

    private static ReadOnlySpan<byte> Contiguous(ReadOnlySpan<byte> log, long at, int length)
    {
        if (at + length <= log.Length)
        {
            return log.Slice((int)at, length);
        }

        var copy = new byte[length];
        int first = (int)(log.Length - at);
        log[(int)at..].CopyTo(copy);
        log[..(length - first)].CopyTo(copy.AsSpan(first));
        return copy;
    }

    private static void Apply(ReadOnlySpan<byte> log, Entry e, long logOffset, Dictionary<long, byte[]?> pages)
    {
        var bytes = Contiguous(log, e.Offset, (int)e.Length);
        string where = $"vhdx: log entry at offset {logOffset + e.Offset}";
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(bytes[24..]);
        long descriptorArea = (64 + (32L * count) + Page - 1) / Page * Page;
        if (descriptorArea > e.Length)
        {
            throw new ImageFormatException($"{where}: {count} descriptors do not fit in {e.Length} bytes");
        }

        int dataSector = (int)descriptorArea;
        for (int i = 0; i < count; i++)
        {
            var d = bytes.Slice(64 + (i * 32), 32);
            long fileOffset = (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(d[16..]), long.MaxValue / 2);
            if (BinaryPrimitives.ReadUInt64LittleEndian(d[24..]) != e.Sequence || fileOffset % Page != 0)
            {
                throw new ImageFormatException($"{where}: descriptor {i} has another sequence number or an unaligned file offset {fileOffset}");
            }

            if (d[..4].SequenceEqual("zero"u8))
            {
                ulong length = BinaryPrimitives.ReadUInt64LittleEndian(d[8..]);
                if (length % Page != 0 || length / Page > (ulong)(MaxPages - pages.Count))
                {
                    throw new ImageFormatException($"{where}: descriptor {i} zeroes {length} bytes: unaligned, or more than this reader replays");
                }

                for (long p = 0; p < (long)length; p += Page)
                {
                    pages[fileOffset + p] = null;
                }
            }
            else if (d[..4].SequenceEqual("desc"u8))
            {
                if (dataSector + Page > bytes.Length || pages.Count >= MaxPages)
                {
                    throw new ImageFormatException($"{where}: descriptor {i} has no data sector left in the entry");
                }

                var s = bytes.Slice(dataSector, Page);
                ulong sequence = ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(s[4..]) << 32) | BinaryPrimitives.ReadUInt32LittleEndian(s[^4..]);
                if (!s[..4].SequenceEqual("data"u8) || sequence != e.Sequence)
                {
                    throw new ImageFormatException($"{where}: data sector at entry offset {dataSector} has a wrong signature or sequence number");
                }

                var page = new byte[Page];
                d.Slice(8, 8).CopyTo(page);
                s.Slice(8, 4084).CopyTo(page.AsSpan(8));
                d.Slice(4, 4).CopyTo(page.AsSpan(Page - 4));
                pages[fileOffset] = page;
                dataSector += Page;
            }
            else
            {
                throw new ImageFormatException($"{where}: descriptor {i} is neither \"desc\" nor \"zero\"");
            }
        }
    }
}
