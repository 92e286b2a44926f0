using UrlDisk.Layers.DiskCache;

namespace UrlDisk.Fuzz.Targets;

/// <summary>
/// A disk cache index file: its header, then its records. A header that reads must write back to the same bytes
/// (a second reading could otherwise see another file), and every record that reads must name a block of the file.
/// </summary>
public sealed class DiskCacheIndexTarget : IFuzzTarget
{
    public string Name => "disk-cache-index";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (!DiskCacheIndex.TryReadHeader(input, out var header, out int headerSize, out string? problem))
        {
            if (string.IsNullOrEmpty(problem))
            {
                throw new InvalidOperationException("a refused header names no problem");
            }

            return;
        }

        var again = new byte[DiskCacheIndex.HeaderSize(header!)];
        if (DiskCacheIndex.WriteHeader(header!, again) != headerSize || !again.AsSpan().SequenceEqual(input[..headerSize]))
        {
            throw new InvalidOperationException($"the header {header} does not write back to the bytes it was read from");
        }

        for (int at = headerSize; at + DiskCacheIndex.RecordSize <= input.Length; at += DiskCacheIndex.RecordSize)
        {
            if (DiskCacheIndex.TryReadRecord(input.Slice(at, DiskCacheIndex.RecordSize), header!.BlockCount, out long block, out _)
                && (block < 0 || block >= header.BlockCount))
            {
                throw new InvalidOperationException($"record at {at} names block {block} of {header.BlockCount}");
            }
        }
    }
}
