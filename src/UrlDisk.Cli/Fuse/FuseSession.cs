using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using UrlDisk.Fuse.Wire;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Fuse;

/// <summary>
/// Serves one image as one file over a mounted /dev/fuse descriptor: reader threads block in read(2), answer
/// the small requests at once and hand READ, WRITE, FSYNC, LSEEK and FALLOCATE to async handlers, so many
/// requests are in flight. The session ends when every reader saw ENODEV (the mount is gone).
/// </summary>
internal sealed partial class FuseSession
{
    public const int MaxIo = 1 << 20;

    /// <summary>A WRITE of max_write bytes plus its headers fits (the kernel refuses smaller read buffers).</summary>
    private const int BufferSize = MaxIo + 4096;
    private const int ReaderCount = 4;

    private readonly int _fd;
    private readonly IBlockDevice _device;
    private readonly long _length;
    private readonly bool _writable;
    private readonly bool _directory;
    private readonly byte[] _fileName;
    private readonly uint _uid;
    private readonly uint _gid;
    private readonly long _time;
    private readonly TextWriter _log;
    private readonly ConcurrentDictionary<Task, byte> _pending = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource _initialized = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _readersLeft;
    private int _errorsLogged;

    /// <param name="fileName">The file's name in a directory mount; null when the mountpoint is the file itself.</param>
    public FuseSession(int fd, IBlockDevice device, bool writable, string? fileName, TextWriter log)
    {
        _fd = fd;
        _device = device;
        _length = device.Length;
        _writable = writable;
        _directory = fileName is not null;
        _fileName = Encoding.UTF8.GetBytes(fileName ?? "");
        _uid = FuseNative.GetEffectiveUserId();
        _gid = FuseNative.GetEffectiveGroupId();
        _time = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        _log = log;
    }

    /// <summary>Completes once the kernel's INIT was answered: the mount is usable.</summary>
    public Task Initialized => _initialized.Task;

    /// <summary>Completes once every reader ended (the mount is gone or the device failed).</summary>
    public Task Ended => _ended.Task;

    public void Start()
    {
        _readersLeft = ReaderCount;
        for (int i = 0; i < ReaderCount; i++)
        {
            new Thread(ReadRequests) { IsBackground = true, Name = $"fuse-reader-{i}" }.Start();
        }
    }

    /// <summary>Waits for the requests in flight; after <paramref name="grace"/> the device calls are cancelled.</summary>
    public async Task DrainAsync(TimeSpan grace)
    {
        _abort.CancelAfter(grace);
        while (!_pending.IsEmpty)
        {
            await Task.WhenAll(_pending.Keys).ConfigureAwait(false);
        }
    }

    private void ReadRequests()
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            while (true)
            {
                nint n = FuseNative.Read(_fd, buffer.AsSpan(0, BufferSize));
                if (n < 0)
                {
                    int errno = FuseNative.Errno;
                    if (errno is Errno.EINTR or Errno.EAGAIN or Errno.ENOENT)
                    {
                        continue;
                    }

                    if (errno != Errno.ENODEV)
                    {
                        _log.WriteLine($"urldisk: reading /dev/fuse failed: {Marshal.GetPInvokeErrorMessage(errno)}");
                    }

                    break;
                }

                if (!FuseInHeader.TryRead(buffer.AsSpan(0, (int)n), out var header))
                {
                    _log.WriteLine($"urldisk: ignored a malformed FUSE request of {n} bytes");
                    continue;
                }

                if (Dispatch(header, buffer))
                {
                    // An async handler owns the buffer now.
                    buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            _initialized.TrySetException(new IOException("the mount ended before the kernel initialised it"));
            if (Interlocked.Decrement(ref _readersLeft) == 0)
            {
                _ended.TrySetResult();
            }
        }
    }

    /// <summary>Answers one request; true when an async handler took <paramref name="buffer"/>.</summary>
    private bool Dispatch(in FuseInHeader header, byte[] buffer)
    {
        var body = new ReadOnlySpan<byte>(buffer, FuseInHeader.Size, (int)header.Length - FuseInHeader.Size);
        switch (header.Opcode)
        {
            case FuseOpcode.Read:
                Track(ReadAsync(header.Unique, buffer));
                return true;
            case FuseOpcode.Write:
                Track(WriteAsync(header, buffer));
                return true;
            case FuseOpcode.Fsync:
                Track(FsyncAsync(header.Unique));
                return false;
            case FuseOpcode.Lseek:
                Track(LseekAsync(header.Unique, body.ToArray()));
                return false;
            case FuseOpcode.Fallocate:
                Track(FallocateAsync(header.Unique, body.ToArray()));
                return false;
            case FuseOpcode.Forget or FuseOpcode.BatchForget or FuseOpcode.Interrupt:
                // Never answered: nodes are fixed, and requests are not cancelled.
                return false;
            default:
                AnswerSmall(header, body);
                return false;
        }
    }

    private void Track(Task task)
    {
        if (task.IsCompleted)
        {
            return;
        }

        _pending.TryAdd(task, 0);
        task.ContinueWith(static (t, pending) => ((ConcurrentDictionary<Task, byte>)pending!).TryRemove(t, out _), _pending, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Sends one reply in one write(2). ENOENT (the request was interrupted) and ENODEV (unmounted) are normal.</summary>
    private void Send(ReadOnlySpan<byte> reply)
    {
        if (FuseNative.Write(_fd, reply) < 0)
        {
            int errno = FuseNative.Errno;
            if (errno is not (Errno.ENOENT or Errno.ENODEV))
            {
                _log.WriteLine($"urldisk: a FUSE reply was refused: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
    }

    private void SendError(ulong unique, int errno)
    {
        Span<byte> reply = stackalloc byte[FuseOutHeader.Size];
        FuseOutHeader.TryWrite(reply, FuseOutHeader.Size, errno, unique);
        Send(reply);
    }

    /// <summary>Sends a header plus the first <paramref name="bodyLength"/> bytes after it in <paramref name="reply"/>.</summary>
    private void SendReply(Span<byte> reply, int bodyLength, ulong unique)
    {
        FuseOutHeader.TryWrite(reply, FuseOutHeader.Size + bodyLength, 0, unique);
        Send(reply[..(FuseOutHeader.Size + bodyLength)]);
    }

    /// <summary>Which errno a device failure becomes; the first few are logged (credentials removed).</summary>
    private int ErrnoOf(Exception e, string what)
    {
        const int Enospc = 28, Edquot = 122, Efbig = 27;
        int errno = e switch
        {
            ReadOnlyDeviceException or UnauthorizedAccessException => Errno.EROFS,
            NotSupportedException => Errno.EOPNOTSUPP,
            ArgumentException => Errno.EINVAL,
            IOException io when io.HResult is Enospc or Edquot or Efbig => Errno.ENOSPC,
            _ => Errno.EIO,
        };
        if (errno is Errno.EIO or Errno.ENOSPC && Interlocked.Increment(ref _errorsLogged) <= 20)
        {
            _log.WriteLine($"urldisk: {what} failed: {Redact.Spec(e.Message.ReplaceLineEndings(" "))}");
        }

        return errno;
    }
}
