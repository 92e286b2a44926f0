using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using UrlDisk.Diagnostics;
using UrlDisk.Sources;

namespace UrlDisk.Layers;

/// <summary>Where and how a <see cref="FillCache"/> keeps its file.</summary>
internal sealed record FillCacheOptions
{
    /// <summary>Directory for the cache file; null means the system temp directory.</summary>
    public string? Directory { get; init; }

    /// <summary>Keep the file after dispose (its path is in Info.Details["fill-cache"]).</summary>
    public bool KeepFile { get; init; }

    /// <summary>
    /// How many failed transfers in a row that filled nothing new may start again from byte 0 (bytes already filled
    /// are not rewritten); a transfer that got further than the ones before does not count (<see cref="RetryPolicy"/>).
    /// </summary>
    public int Retries { get; init; } = 3;

    /// <summary>Where restarted transfers are logged with their cause; null uses the process-wide fallback.</summary>
    public ILogger? Logger { get; init; }
}

/// <summary>
/// Random access over a source that can only send the whole file in order: ONE background transfer fills a local
/// sparse file, and a read returns as soon as the fill has passed the end of its range. With the length unknown
/// up front, opening waits for the end of the transfer.
/// </summary>
internal sealed class FillCache : BlockDevice
{
    private readonly ISequentialSource _source;
    private readonly SafeFileHandle _file;
    private readonly string _path;
    private readonly bool _keep;
    private readonly FillWatermark _watermark = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly KeyValuePair<string, object?> _tag;
    private readonly RetryPolicy _retry;
    private Task _fill = Task.CompletedTask;
    private long _length;
    private BlockDeviceInfo _info = null!;

    private FillCache(ISequentialSource source, FillCacheOptions options, SafeFileHandle file, string path)
    {
        _source = source;
        _file = file;
        _path = path;
        _keep = options.KeepFile;
        _retry = new RetryPolicy(options.Retries, source.Protocol, logger: options.Logger);
        _length = source.Length ?? -1;
        _tag = new("protocol", source.Protocol);
    }

    /// <summary>Starts the fill; returns at once when the source knows its length, else after the whole transfer. Takes ownership of <paramref name="source"/>.</summary>
    public static async Task<FillCache> CreateAsync(ISequentialSource source, FillCacheOptions? options, CancellationToken cancellationToken)
    {
        options ??= new FillCacheOptions();
        string dir = options.Directory ?? Path.GetTempPath();
        string path = Path.Combine(dir, $"urldisk-fill-{Guid.NewGuid():n}.part");
        SafeFileHandle file;
        try
        {
            System.IO.Directory.CreateDirectory(dir);
            file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, FileOptions.Asynchronous);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await source.DisposeAsync().ConfigureAwait(false);
            throw new UrlDiskException($"cannot create the fill cache file in '{dir}': {e.Message}", e);
        }

        var cache = new FillCache(source, options, file, path);
        if (source.Length is { } known)
        {
            try
            {
                // A sparse file of the final size: unfilled parts take no disk space.
                RandomAccess.SetLength(file, known);
            }
            catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
            {
                await cache.DisposeAsync().ConfigureAwait(false);
                string why = e is ArgumentException ? "larger than its file system allows" : e.Message;
                throw new SourceException(
                    $"{source.DisplayName}: the server announced {known} bytes ({source.SizeName}), which the fill cache file in '{dir}' cannot hold: {why}");
            }
        }

        cache._info = cache.MakeInfo();
        cache._fill = Task.Run(cache.FillAsync, CancellationToken.None);
        if (source.Length is null)
        {
            try
            {
                await cache._fill.WaitAsync(cancellationToken).ConfigureAwait(false);
                cache.ThrowIfFailed();
            }
            catch
            {
                await cache.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        return cache;
    }

    public override long Length => Volatile.Read(ref _length);

    /// <summary>Built on each call, so Details["fill-cache"] shows how far the fill is now.</summary>
    public override BlockDeviceInfo Info => _info with
    {
        Details = new Dictionary<string, object?>(_info.Details)
        {
            ["fill-cache"] = new Dictionary<string, object?>
            {
                ["file"] = _path,
                ["filled"] = Filled,
                ["complete"] = _fill.IsCompleted && _failure is null,
                ["kept-after-close"] = _keep,
            },
        },
    };

    /// <summary>Bytes filled so far, from byte 0.</summary>
    public long Filled => _watermark.Filled;

    public string CachePath => _path;

    private Exception? _failure;

    private void ThrowIfFailed()
    {
        if (_failure is not null)
        {
            throw _failure;
        }
    }

    private BlockDeviceInfo MakeInfo()
    {
        return new BlockDeviceInfo
        {
            Driver = _source.Protocol,
            DisplayName = _source.DisplayName,
            PreferredBlockSize = 64 * 1024,
            Details = _source.Details,
        };
    }

    private async Task FillAsync()
    {
        try
        {
            await _retry.RunAsync(FillOnceAsync, () => _watermark.Filled, _stop.Token).ConfigureAwait(false);
            _watermark.Complete();
        }
        catch (Exception e)
        {
            _failure = e is OperationCanceledException && _stop.IsCancellationRequested
                ? new ObjectDisposedException(nameof(FillCache), "the fill cache was closed")
                : e;
            _watermark.Fail(_failure);
        }
    }

    /// <summary>One transfer from byte 0; bytes below the watermark (from an earlier transfer) are skipped, not rewritten.</summary>
    private async Task FillOnceAsync(CancellationToken ct)
    {
        long position = 0;
        await _source.CopyToAsync((chunk, _) =>
        {
            long end = position + chunk.Length;
            long filled = _watermark.Filled;
            if (_length >= 0 && end > _length)
            {
                throw new RemoteFileChangedException(
                    $"{_source.DisplayName}: the server sent more than the {_length} bytes it announced ({_source.SizeName}), at least {end}; the file changed or its {_source.SizeName} is wrong");
            }

            if (end > filled)
            {
                // After a restart, bytes below the watermark are already in the file.
                int skip = (int)Math.Max(0, filled - position);
                // A plain pwrite: it lands in the page cache at once, and this loop is the fill's own task,
                // so blocking it briefly is cheaper than a thread-pool hop per (often 1.4 KB) chunk.
                RandomAccess.Write(_file, chunk.Span[skip..], position + skip);

                // The last byte is released only once the transfer has ended where it was announced to:
                // a reader of the end must not finish before data past it, or a short transfer, is seen.
                _watermark.Advance(_length >= 0 ? Math.Min(end, _length - 1) : end);
            }

            position = end;
            return ValueTask.CompletedTask;
        }, ct).ConfigureAwait(false);

        if (_length >= 0 && position != _length)
        {
            throw new RemoteFileChangedException(
                $"{_source.DisplayName}: the transfer ended at byte {position}, before the {_length} bytes the server announced ({_source.SizeName}); the file changed or its {_source.SizeName} is wrong");
        }

        Volatile.Write(ref _length, position);
        _watermark.Advance(position);
    }

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        long end = offset + buffer.Length;
        if (_watermark.Filled >= end)
        {
            UrlDiskMetrics.CacheHits.Add(1, _tag);
        }
        else
        {
            UrlDiskMetrics.CacheJoins.Add(1, _tag);
            await _watermark.WaitAsync(end, cancellationToken).ConfigureAwait(false);
        }

        int done = 0;
        while (done < buffer.Length)
        {
            int n = await RandomAccess.ReadAsync(_file, buffer[done..], offset + done, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException($"fill cache file '{_path}' is shorter than expected");
            }

            done += n;
        }

        UrlDiskMetrics.BytesRead.Add(buffer.Length, _tag);
    }

    protected override async ValueTask DisposeCoreAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _fill.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SourceException or IOException)
        {
            // The fill is being abandoned; its failure matters to no reader now.
        }

        await _source.DisposeAsync().ConfigureAwait(false);
        _file.Dispose();
        _stop.Dispose();
        if (!_keep)
        {
            try
            {
                File.Delete(_path);
            }
            catch (IOException)
            {
                // Best effort; the file is in a temp or cache directory.
            }
        }
    }
}
