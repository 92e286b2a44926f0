using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace UrlDisk.Layers.Compressed;

/// <summary>
/// Random access into an xz file made of many blocks (<c>xz --block-size=…</c>), like nbdkit's xz filter: a read
/// finds its blocks by binary search over the index, decodes each one whole and keeps the last few decoded in a
/// small cache (bounded in bytes). Blocks decode independently because each restarts LZMA2.
/// </summary>
internal sealed class XzBlockDevice : BlockDevice
{
    /// <summary>Larger blocks are read sequentially through the fill cache instead (nbdkit's limit is 512 MiB).</summary>
    public const long MaxBlockSize = 64L << 20;

    /// <summary>Decoded bytes kept for reuse.</summary>
    private const long CacheBudget = 64L << 20;

    private readonly IBlockDevice _file;
    private readonly XzBlock[] _blocks;
    private readonly long _length;
    private readonly int _cacheCount;
    private readonly Lock _lock = new();
    private readonly LinkedList<(int Index, Task<byte[]> Data)> _cache = new();

    public XzBlockDevice(IBlockDevice file, IReadOnlyList<XzBlock> blocks)
    {
        _file = file;
        _blocks = [.. blocks];
        _length = _blocks.Length == 0 ? 0 : _blocks[^1].UncompressedEnd;
        long largest = _blocks.Length == 0 ? 1 : _blocks.Max(b => b.UncompressedSize);
        _cacheCount = (int)Math.Clamp(CacheBudget / largest, 2, 64);
        Info = new BlockDeviceInfo
        {
            Driver = "xz",
            DisplayName = file.Info.DisplayName,
            PreferredBlockSize = (int)Math.Clamp(largest, 4096, 1 << 20),
            Details = new Dictionary<string, object?> { ["compression"] = "xz", ["blocks"] = _blocks.Length, ["random-access"] = true },
            Child = file,
        };
    }

    public override long Length => _length;

    public override BlockDeviceInfo Info { get; }

    public int BlockCount => _blocks.Length;

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int i = Find(offset);
        while (buffer.Length > 0)
        {
            var block = _blocks[i];
            var data = await GetBlockAsync(i).WaitAsync(cancellationToken).ConfigureAwait(false);
            int within = (int)(offset - block.UncompressedOffset);
            int n = (int)Math.Min(buffer.Length, block.UncompressedSize - within);
            data.AsMemory(within, n).CopyTo(buffer);
            buffer = buffer[n..];
            offset += n;
            i++;
        }
    }

    private int Find(long offset)
    {
        int lo = 0;
        int hi = _blocks.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (_blocks[mid].UncompressedOffset <= offset)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return lo;
    }

    /// <summary>The decoded block, from the cache or decoded once however many readers ask at the same time.</summary>
    private Task<byte[]> GetBlockAsync(int index)
    {
        lock (_lock)
        {
            for (var node = _cache.First; node is not null; node = node.Next)
            {
                if (node.Value.Index == index)
                {
                    if (!node.Value.Data.IsFaulted)
                    {
                        _cache.Remove(node);
                        _cache.AddFirst(node);
                        return node.Value.Data;
                    }

                    _cache.Remove(node);
                    break;
                }
            }

            // Decoding is not tied to one reader's cancellation: others may wait for it too.
            var task = Task.Run(() => DecodeAsync(_blocks[index], CancellationToken.None).AsTask());
            _cache.AddFirst((index, task));
            while (_cache.Count > _cacheCount)
            {
                _cache.RemoveLast();
            }

            return task;
        }
    }

    private async ValueTask<byte[]> DecodeAsync(XzBlock block, CancellationToken cancellationToken)
    {
        if (block.UncompressedSize > MaxBlockSize)
        {
            throw new ImageFormatException($"xz: block at offset {block.FileOffset} holds {block.UncompressedSize} bytes, more than the {MaxBlockSize} this reader decodes at once");
        }

        int checkSize = XzIndex.CheckSize(block.CheckType);
        if (block.UnpaddedSize > block.UncompressedSize + (block.UncompressedSize / 8) + (1 << 20) || block.FileOffset + ((block.UnpaddedSize + 3) & ~3L) > _file.Length)
        {
            throw new ImageFormatException($"xz: block at offset {block.FileOffset}: {block.UnpaddedSize} packed bytes are implausible for {block.UncompressedSize} unpacked, or run past the file");
        }

        // The check follows the block padding: the block occupies its unpadded size rounded up to 4.
        int total = (int)((block.UnpaddedSize + 3) & ~3L);
        var packed = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            var span = packed.AsMemory(0, total);
            await _file.ReadAsync(block.FileOffset, span, cancellationToken).ConfigureAwait(false);
            var header = XzBlockHeader.Parse(span.Span, block.FileOffset);
            long compressed = block.UnpaddedSize - header.Size - checkSize;
            if (compressed <= 0 || (header.CompressedSize is { } c && c != compressed) || (header.UncompressedSize is { } u && u != block.UncompressedSize))
            {
                throw new ImageFormatException($"xz: block header at offset {block.FileOffset}: its sizes disagree with the index");
            }

            var data = new byte[block.UncompressedSize];
            LibLzma.DecodeBlock(header.Filters, span.Span.Slice(header.Size, (int)compressed), data, $"block at offset {block.FileOffset}");
            Verify(block, data, span.Span[^checkSize..]);
            return data;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(packed);
        }
    }

    private static void Verify(XzBlock block, ReadOnlySpan<byte> data, ReadOnlySpan<byte> check)
    {
        bool ok = block.CheckType switch
        {
            1 => BinaryPrimitives.ReadUInt32LittleEndian(check) == XzChecksums.Crc32(data),
            4 => BinaryPrimitives.ReadUInt64LittleEndian(check) == XzChecksums.Crc64(data),
            10 => SHA256.HashData(data).AsSpan().SequenceEqual(check),
            _ => true, // none, or a check type this reader does not know (xz itself only warns)
        };
        if (!ok)
        {
            throw new ImageFormatException($"xz: block at offset {block.FileOffset}: the decoded data does not match its check (type {block.CheckType})");
        }
    }

    public override ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken = default)
    {
        if (_blocks.Length > 0 && offset < _length)
        {
            _ = GetBlockAsync(Find(offset));
        }

        return ValueTask.CompletedTask;
    }

    protected override ValueTask DisposeCoreAsync() => _file.DisposeAsync();
}
