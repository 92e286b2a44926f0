using System.Buffers;
using Microsoft.Extensions.Logging;
using UrlDisk.Diagnostics;
using UrlDisk.Sources;

namespace UrlDisk.Layers.DiskCache;

/// <summary>
/// A persistent cache, shared by processes, of the blocks read from a remote file (<c>cache-dir</c>), kept per
/// version of the file (<see cref="ContentIdentity"/>: final URL, size, validators), so the source's open probe is
/// the one revalidation and a later open of an unchanged file reads what is present locally. A block read from
/// the source is written to the entry's sparse data file, made durable, and only then claimed in the index; a
/// local block whose bytes fail their checksum is read from the source again. It sits right over the bare source,
/// under the readahead cache. Failing to store (a full disk) never fails a read: the bytes come from the source.
/// </summary>
internal sealed class DiskCache : BlockDevice
{
    /// <summary>Bytes per block: large enough to keep the index small, small enough that a boot's scattered reads fetch little extra.</summary>
    public const int DefaultBlockSize = 256 * 1024;

    /// <summary>Missing blocks fetched in one request at most (8 MiB).</summary>
    private const int MaxRunBlocks = 32;

    private readonly IBlockDevice _inner;
    private readonly DiskCacheStore _store;

    /// <summary>The cache directory (boot profiles live in a folder of it).</summary>
    internal string Directory => _store.Directory;
    private readonly DiskCacheEntry _entry;
    private readonly ILogger _logger;
    private readonly KeyValuePair<string, object?> _tag;
    private int _storeFailed;

    private DiskCache(IBlockDevice inner, DiskCacheStore store, DiskCacheEntry entry, ILogger logger)
    {
        _inner = inner;
        _store = store;
        _entry = entry;
        _logger = logger;
        var details = new Dictionary<string, object?>(inner.Info.Details) { ["disk-cache"] = store.Directory };
        Info = inner.Info with { Child = inner, Details = details };
        _tag = new("protocol", inner.Info.Driver);
    }

    public override long Length => _inner.Length;

    public override BlockDeviceInfo Info { get; }

    /// <summary>Bytes of the file present in the cache now.</summary>
    internal long PresentBytes => _entry.PresentBytes;

    /// <summary>
    /// <paramref name="source"/> under a disk cache when <paramref name="settings"/> name a directory and the source
    /// can say which version of which file it reads; otherwise the source itself (a file without validators is not
    /// kept: a changed file could not be told from it).
    /// </summary>
    public static IBlockDevice Wrap(IBlockDevice source, DiskCacheSettings settings, ILogger logger, int blockSize = DefaultBlockSize)
    {
        if (!settings.Enabled)
        {
            return source;
        }

        var identity = ContentIdentity.Find(source);
        if (identity is not { CanPersist: true })
        {
            logger.LogWarning("disk cache: {Source} has no validator (ETag, Last-Modified or MDTM) or no size, so a changed file could not be told from it: it is not kept in {Directory}",
                source.Info.DisplayName ?? source.Info.Driver, settings.Directory);
            return source;
        }

        if (identity.Length == 0)
        {
            return source;
        }

        var store = new DiskCacheStore(settings.Directory!, settings.MaxBytes, logger);
        try
        {
            var entry = store.Open(identity, blockSize);
            logger.LogInformation("disk cache: {Location}: {Present} of {Length} bytes present in {Directory}", Specs.Redact.Url(identity.Location), entry.PresentBytes, identity.Length, store.Directory);
            return new DiskCache(source, store, entry, logger);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int blockSize = _entry.BlockSize;
        long first = offset / blockSize;
        long last = (offset + buffer.Length - 1) / blockSize;
        bool refreshed = false;
        long run = -1;
        for (long block = first; block <= last; block++)
        {
            if (!_entry.TryGetBlock(block, out _) && !refreshed)
            {
                // Another process may have fetched it since we last looked.
                _entry.Refresh();
                refreshed = true;
            }

            if (_entry.TryGetBlock(block, out uint crc) && await TryReadLocalAsync(block, crc, offset, buffer, cancellationToken).ConfigureAwait(false))
            {
                if (run >= 0)
                {
                    await FetchAsync(run, block - 1, offset, buffer, cancellationToken).ConfigureAwait(false);
                    run = -1;
                }

                continue;
            }

            if (run < 0)
            {
                run = block;
            }
            else if (block - run == MaxRunBlocks)
            {
                await FetchAsync(run, block - 1, offset, buffer, cancellationToken).ConfigureAwait(false);
                run = block;
            }
        }

        if (run >= 0)
        {
            await FetchAsync(run, last, offset, buffer, cancellationToken).ConfigureAwait(false);
        }

        UrlDiskMetrics.BytesRead.Add(buffer.Length, _tag);
    }

    /// <summary>Copies the part of a present block that <paramref name="buffer"/> wants; false when its bytes fail the checksum.</summary>
    private async ValueTask<bool> TryReadLocalAsync(long block, uint crc, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        long start = block * _entry.BlockSize;
        int length = _entry.BlockLength(block);
        bool whole = start >= offset && start + length <= offset + buffer.Length;
        byte[]? rented = whole ? null : ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var target = whole ? buffer.Slice((int)(start - offset), length) : rented.AsMemory(0, length);
            if (!await TryReadExactlyAsync(target, start, cancellationToken).ConfigureAwait(false) || Crc32C.Compute(target.Span) != crc)
            {
                _logger.LogWarning("disk cache: block {Block} of {Name} does not match its checksum; it is read from the source again", block, _entry.Name);
                _entry.Forget(block);
                return false;
            }

            if (!whole)
            {
                CopyOverlap(rented!.AsSpan(0, length), start, offset, buffer.Span);
            }

            UrlDiskMetrics.CacheHits.Add(1, _tag);
            return true;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Reads blocks <paramref name="firstBlock"/>..<paramref name="lastBlock"/> from the source, gives the reader its part and keeps them.</summary>
    private async ValueTask FetchAsync(long firstBlock, long lastBlock, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        UrlDiskMetrics.CacheMisses.Add(1, _tag);
        long start = firstBlock * _entry.BlockSize;
        int length = (int)(Math.Min((lastBlock + 1) * _entry.BlockSize, Length) - start);
        bool whole = start >= offset && start + length <= offset + buffer.Length;
        byte[]? rented = whole ? null : ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var data = whole ? buffer.Slice((int)(start - offset), length) : rented.AsMemory(0, length);
            await _inner.ReadAsync(start, data, cancellationToken).ConfigureAwait(false);
            if (!whole)
            {
                CopyOverlap(data.Span, start, offset, buffer.Span);
            }

            await KeepAsync(firstBlock, data, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Write, fdatasync, then claim: the index never names a block whose bytes could be lost.</summary>
    private async ValueTask KeepAsync(long firstBlock, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _storeFailed) != 0 || !_store.TryReserve(_entry, data.Length))
        {
            return;
        }

        try
        {
            long start = firstBlock * _entry.BlockSize;
            await RandomAccess.WriteAsync(_entry.Data, data, start, cancellationToken).ConfigureAwait(false);
            CacheDirectoryLock.FlushData(_entry.Data);
            int count = (int)((data.Length + _entry.BlockSize - 1) / _entry.BlockSize);
            var records = new (long, uint)[count];
            for (int i = 0; i < count; i++)
            {
                int from = i * _entry.BlockSize;
                records[i] = (firstBlock + i, Crc32C.Compute(data.Span[from..Math.Min(from + _entry.BlockSize, data.Length)]));
            }

            _entry.Append(records, _store.Lock);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (Interlocked.Exchange(ref _storeFailed, 1) == 0)
            {
                _logger.LogWarning("disk cache: cannot store blocks in {Directory} ({Message}); reads go to the source", _store.Directory, e.Message);
            }
        }
    }

    /// <summary>False when the data file ends early (cut short by hand): the block is then fetched again.</summary>
    private async ValueTask<bool> TryReadExactlyAsync(Memory<byte> target, long offset, CancellationToken cancellationToken)
    {
        while (target.Length > 0)
        {
            int n = await RandomAccess.ReadAsync(_entry.Data, target, offset, cancellationToken).ConfigureAwait(false);
            if (n <= 0)
            {
                return false;
            }

            target = target[n..];
            offset += n;
        }

        return true;
    }

    private static void CopyOverlap(ReadOnlySpan<byte> data, long dataOffset, long offset, Span<byte> buffer)
    {
        long from = Math.Max(dataOffset, offset);
        long to = Math.Min(dataOffset + data.Length, offset + buffer.Length);
        data[(int)(from - dataOffset)..(int)(to - dataOffset)].CopyTo(buffer[(int)(from - offset)..]);
    }

    public override ValueTask FlushAsync(CancellationToken cancellationToken = default) => _inner.FlushAsync(cancellationToken);

    protected override ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
        => _inner.GetExtentsAsync(offset, length, cancellationToken);

    protected override async ValueTask DisposeCoreAsync()
    {
        _entry.Dispose();
        _store.Dispose();
        await _inner.DisposeAsync().ConfigureAwait(false);
    }
}
