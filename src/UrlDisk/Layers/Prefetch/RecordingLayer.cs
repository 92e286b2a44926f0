using System.Diagnostics;

namespace UrlDisk.Layers.Prefetch;

/// <summary>
/// Records which bytes of the image file are read, in what order, while a boot runs, and writes them as a
/// <see cref="BootProfile"/>. The window opens at the first read and closes when the reader has been idle for
/// <see cref="RecordingWindow.Idle"/>, at <see cref="RecordingWindow.Longest"/> after the first read, or when the
/// device closes, whichever comes first; the profile is then written once, atomically (temp file + rename), so a
/// reader of the file never sees half of one. Reads pass through unchanged and are never delayed.
/// </summary>
internal sealed class RecordingLayer : BlockDevice
{
    private readonly IBlockDevice _inner;
    private readonly string _identityKey;
    private readonly string _path;
    private readonly RecordingWindow _window;
    private readonly Action<string> _note;
    private readonly Lock _lock = new();
    private readonly List<ProfileRange> _reads = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _watch;
    private long _firstRead = -1, _lastRead;
    private int _closed;

    public RecordingLayer(IBlockDevice inner, string identityKey, string path, RecordingWindow window, Action<string> note)
    {
        _inner = inner;
        _identityKey = identityKey;
        _path = path;
        _window = window;
        _note = note;
        Info = inner.Info with { Child = inner, Details = new Dictionary<string, object?>(inner.Info.Details) { ["record-profile"] = path } };
        _watch = WatchAsync(_stop.Token);
    }

    public override long Length => _inner.Length;

    public override BlockDeviceInfo Info { get; }

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _closed) == 0)
        {
            Record(offset, buffer.Length);
        }

        return _inner.ReadAsync(offset, buffer, cancellationToken);
    }

    public override ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken = default)
        => _inner.PrefetchAsync(offset, length, cancellationToken);

    protected override ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
        => _inner.GetExtentsAsync(offset, length, cancellationToken);

    private void Record(long offset, int length)
    {
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            if (_firstRead < 0)
            {
                _firstRead = now;
            }

            _lastRead = now;
            if (_reads.Count > 0 && _reads[^1].End == offset)
            {
                // Sequential reads (the common case) grow one entry.
                _reads[^1] = _reads[^1] with { Length = _reads[^1].Length + length };
            }
            else if (_reads.Count < BootProfile.MaxRanges)
            {
                _reads.Add(new ProfileRange(offset, length));
            }
        }
    }

    private async Task WatchAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_window.Tick);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                long first, last;
                lock (_lock)
                {
                    (first, last) = (_firstRead, _lastRead);
                }

                if (first >= 0 && (Stopwatch.GetElapsedTime(last) >= _window.Idle || Stopwatch.GetElapsedTime(first) >= _window.Longest))
                {
                    await CloseAndWriteAsync().ConfigureAwait(false);
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Ends the window and writes the profile, once.</summary>
    private async Task CloseAndWriteAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        List<ProfileRange> ranges;
        lock (_lock)
        {
            ranges = AccessOrder.Normalize(_reads);
            _reads.Clear();
        }

        var profile = new BootProfile(_identityKey, _inner.Length, ranges);
        string temp = $"{_path}.{Environment.ProcessId}.tmp";
        try
        {
            var fs = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous);
            await using (fs.ConfigureAwait(false))
            {
                await fs.WriteAsync(profile.Encode(), CancellationToken.None).ConfigureAwait(false);
                fs.Flush(flushToDisk: true);
            }

            File.Move(temp, _path, overwrite: true);
            _note($"recorded boot profile {_path}: {ranges.Count} ranges, {ranges.Sum(r => r.Length)} bytes");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _note($"cannot write boot profile {_path}: {e.Message}");
            try
            {
                File.Delete(temp);
            }
            catch (Exception e2) when (e2 is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    protected override async ValueTask DisposeCoreAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _watch.ConfigureAwait(false);
        await CloseAndWriteAsync().ConfigureAwait(false);
        _stop.Dispose();
        await _inner.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>How long a recording lasts: until the reader is idle for <paramref name="Idle"/>, or <paramref name="Longest"/> after its first read.</summary>
internal sealed record RecordingWindow(TimeSpan Idle, TimeSpan Longest)
{
    /// <summary>A boot reads in bursts seconds apart; 20 s without a read means it is done. Two minutes covers a slow boot.</summary>
    public static RecordingWindow Default { get; } = new(TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(120));

    /// <summary>How often the window is checked.</summary>
    public TimeSpan Tick => TimeSpan.FromMilliseconds(Math.Clamp(Idle.TotalMilliseconds / 4, 10, 1000));
}
