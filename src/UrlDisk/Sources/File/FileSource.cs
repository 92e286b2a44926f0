using Microsoft.Win32.SafeHandles;

namespace UrlDisk.Sources.File;

/// <summary>A local file (or block device) with positional I/O through <see cref="RandomAccess"/>.</summary>
internal sealed class FileSource : BlockDevice, IGrowableFile
{
    private readonly SafeFileHandle _handle;
    private readonly bool _writable;
    private long _length;

    private FileSource(SafeFileHandle handle, string path, bool writable, long length)
    {
        _handle = handle;
        _writable = writable;
        _length = length;
        Path = path;
        Info = new BlockDeviceInfo
        {
            Driver = "file",
            DisplayName = path,
            CanWrite = writable,
            CanWriteZeroes = writable,
            // Trim punches a hole (fallocate) so a trimmed range gives its blocks back, as qemu's file-posix does.
            CanTrim = writable && OperatingSystem.IsLinux(),
            CanFlush = writable,
            ReportsAllocation = SparseFileMap.IsSupported,
            PreferredBlockSize = 64 * 1024,
            Details = new Dictionary<string, object?> { ["protocol"] = "file", ["path"] = System.IO.Path.GetFullPath(path) },
        };
    }

    public string Path { get; }

    public static FileSource Open(string path, bool writable)
    {
        SafeFileHandle handle;
        try
        {
            handle = System.IO.File.OpenHandle(path, FileMode.Open, writable ? FileAccess.ReadWrite : FileAccess.Read,
                writable ? FileShare.Read : FileShare.ReadWrite, FileOptions.Asynchronous);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SourceException($"Could not open '{path}': {e.Message}", e);
        }

        long length = RandomAccess.GetLength(handle);
        return new FileSource(handle, path, writable, length);
    }

    public override long Length => Volatile.Read(ref _length);

    public override BlockDeviceInfo Info { get; }

    /// <summary>Grows or shrinks the file (formats that allocate at the end use this).</summary>
    public void SetLength(long length)
    {
        RandomAccess.SetLength(_handle, length);
        Volatile.Write(ref _length, length);
    }

    /// <summary>
    /// Reads (and writes) up to this size are done on the caller's thread. .NET runs every asynchronous file read on Unix as a
    /// blocking pread on a thread-pool thread, so for a small read (usually from the page cache) the hand-off to that
    /// thread and back costs more than the read; larger reads keep the hand-off, so callers still overlap them.
    /// </summary>
    private const int InlineLimit = 256 * 1024;

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (buffer.Length > InlineLimit)
        {
            return ReadPooledAsync(offset, buffer, cancellationToken);
        }

        cancellationToken.ThrowIfCancellationRequested();
        var span = buffer.Span;
        while (span.Length > 0)
        {
            int n = RandomAccess.Read(_handle, span, offset);
            if (n == 0)
            {
                // The file shrank under us: the rest reads as zeros, as a sparse tail would.
                span.Clear();
                break;
            }

            span = span[n..];
            offset += n;
        }

        return ValueTask.CompletedTask;
    }

    private async ValueTask ReadPooledAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (buffer.Length > 0)
        {
            int n = await RandomAccess.ReadAsync(_handle, buffer, offset, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                // The file shrank under us: the rest reads as zeros, as a sparse tail would.
                buffer.Span.Clear();
                return;
            }

            buffer = buffer[n..];
            offset += n;
        }
    }

    protected override ValueTask WriteCoreAsync(long offset, ReadOnlyMemory<byte> data, WriteOptions options, CancellationToken cancellationToken)
        => WriteAndMaybeFlushAsync(offset, data, options, cancellationToken);

    /// <summary>Writes may extend the file: formats allocate past the end.</summary>
    public async ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        if (!_writable)
        {
            throw new ReadOnlyDeviceException("file");
        }

        await WriteAsync(offset, data, cancellationToken).ConfigureAwait(false);
        long end = offset + data.Length;
        long current;
        while (end > (current = Volatile.Read(ref _length)) && Interlocked.CompareExchange(ref _length, end, current) != current)
        {
        }
    }

    /// <summary>Small writes (a qcow2 cluster, table or refcount update) are done inline, as small reads are.</summary>
    private ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (data.Length > InlineLimit)
        {
            return RandomAccess.WriteAsync(_handle, data, offset, cancellationToken);
        }

        cancellationToken.ThrowIfCancellationRequested();
        RandomAccess.Write(_handle, data.Span, offset);
        return ValueTask.CompletedTask;
    }

    private async ValueTask WriteAndMaybeFlushAsync(long offset, ReadOnlyMemory<byte> data, WriteOptions options, CancellationToken cancellationToken)
    {
        await WriteAsync(offset, data, cancellationToken).ConfigureAwait(false);
        if ((options & WriteOptions.ForceUnitAccess) != 0)
        {
            RandomAccess.FlushToDisk(_handle);
        }
    }

    /// <summary>Zeros may become a hole (fast, and the blocks are given back) unless the caller asks to keep them allocated.</summary>
    protected override ValueTask WriteZeroesCoreAsync(long offset, long length, WriteOptions options, CancellationToken cancellationToken)
    {
        if ((options & WriteOptions.NoHole) == 0 && Operations.FileHoles.TryPunch(_handle, offset, length))
        {
            if ((options & WriteOptions.ForceUnitAccess) != 0)
            {
                RandomAccess.FlushToDisk(_handle);
            }

            return ValueTask.CompletedTask;
        }

        return base.WriteZeroesCoreAsync(offset, length, options, cancellationToken);
    }

    /// <summary>A file system that cannot punch holes keeps the data: trim is only a hint.</summary>
    protected override ValueTask TrimCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Operations.FileHoles.TryPunch(_handle, offset, length);
        return ValueTask.CompletedTask;
    }

    protected override ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
        => new(SparseFileMap.GetExtents(_handle, offset, length));

    public override ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_writable)
        {
            RandomAccess.FlushToDisk(_handle);
        }

        return ValueTask.CompletedTask;
    }

    protected override ValueTask DisposeCoreAsync()
    {
        _handle.Dispose();
        return ValueTask.CompletedTask;
    }
}
