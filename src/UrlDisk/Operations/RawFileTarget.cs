using Microsoft.Win32.SafeHandles;

namespace UrlDisk.Operations;

/// <summary>
/// A raw output file for convert. A new file is written under a temporary name beside the target and
/// renamed into place by <see cref="CommitAsync"/>, so a failed convert leaves nothing half-written.
/// An existing device (/dev/null, a block device) or <c>-n</c> target is written in place.
/// </summary>
internal sealed class RawFileTarget : BlockDevice
{
    private readonly SafeFileHandle _handle;
    private readonly string _path;
    private readonly string? _tempPath;
    private readonly long _length;
    private bool _committed;

    private RawFileTarget(SafeFileHandle handle, string path, string? tempPath, long length, bool zeroed)
    {
        _handle = handle;
        _path = path;
        _tempPath = tempPath;
        _length = length;
        IsZeroed = zeroed;
        Info = new BlockDeviceInfo { Driver = "raw", DisplayName = path, CanWrite = true, CanWriteZeroes = true, CanFlush = true };
    }

    /// <summary>Flush to disk when the copy ends (<c>-t writeback</c>); qemu-img's default for convert, <c>unsafe</c>, leaves it to the page cache.</summary>
    public bool SyncOnFlush { get; init; }

    /// <summary>True when the target reads as zeros before anything is written.</summary>
    public bool IsZeroed { get; }

    public override long Length => _length;

    public override BlockDeviceInfo Info { get; }

    /// <summary>Creates the target of <paramref name="length"/> bytes. <paramref name="existing"/> is qemu-img's <c>-n</c>.</summary>
    public static RawFileTarget Create(string path, long length, bool existing, bool sync = false)
    {
        bool isDevice = System.IO.File.Exists(path) && !IsRegularFile(path);
        if (existing || isDevice)
        {
            if (!System.IO.File.Exists(path))
            {
                throw new UrlDiskException($"'{path}' does not exist (-n writes into an existing target)");
            }

            var h = System.IO.File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, FileOptions.Asynchronous);
            if (!isDevice && RandomAccess.GetLength(h) < length)
            {
                long have = RandomAccess.GetLength(h);
                h.Dispose();
                throw new UrlDiskException($"'{path}' is {have} bytes, smaller than the image ({length} bytes)");
            }

            return new RawFileTarget(h, path, null, length, zeroed: false) { SyncOnFlush = sync };
        }

        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(dir))
        {
            throw new UrlDiskException($"cannot create '{path}': directory '{dir}' does not exist");
        }

        string temp = Path.Combine(dir, $".{Path.GetFileName(path)}.urldisk-{Guid.NewGuid():N}.part");
        var handle = System.IO.File.OpenHandle(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.Asynchronous);
        try
        {
            RandomAccess.SetLength(handle, length);
        }
        catch
        {
            handle.Dispose();
            System.IO.File.Delete(temp);
            throw;
        }

        return new RawFileTarget(handle, path, temp, length, zeroed: true) { SyncOnFlush = sync };
    }

    /// <summary>Device nodes (/dev/null, block devices) are written in place: they cannot be renamed over.</summary>
    private static bool IsRegularFile(string path)
    {
        var full = new FileInfo(Path.GetFullPath(path));
        string resolved = full.LinkTarget is null ? full.FullName : full.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full.FullName;
        return !resolved.StartsWith("/dev/", StringComparison.Ordinal);
    }

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        => throw new NotSupportedException("convert targets are write-only");

    protected override async ValueTask WriteCoreAsync(long offset, ReadOnlyMemory<byte> data, WriteOptions options, CancellationToken cancellationToken)
        => await RandomAccess.WriteAsync(_handle, data, offset, cancellationToken).ConfigureAwait(false);

    /// <summary>Zeros in an existing file become holes where the file system can punch them (qemu-img -n does the same).</summary>
    protected override ValueTask WriteZeroesCoreAsync(long offset, long length, WriteOptions options, CancellationToken cancellationToken)
        => FileHoles.TryPunch(_handle, offset, length) ? ValueTask.CompletedTask : base.WriteZeroesCoreAsync(offset, length, options, cancellationToken);

    public override ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (SyncOnFlush)
        {
            RandomAccess.FlushToDisk(_handle);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Moves the finished file into place.</summary>
    public ValueTask CommitAsync()
    {
        _handle.Dispose();
        if (_tempPath is not null)
        {
            System.IO.File.Move(_tempPath, _path, overwrite: true);
        }

        _committed = true;
        return ValueTask.CompletedTask;
    }

    protected override ValueTask DisposeCoreAsync()
    {
        _handle.Dispose();
        if (!_committed && _tempPath is not null)
        {
            try
            {
                System.IO.File.Delete(_tempPath);
            }
            catch (IOException)
            {
            }
        }

        return ValueTask.CompletedTask;
    }
}
