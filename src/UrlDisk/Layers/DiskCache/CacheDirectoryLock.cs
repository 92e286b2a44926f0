using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace UrlDisk.Layers.DiskCache;

/// <summary>
/// The cache directory's lock: <c>flock(2)</c> on <c>DIR/lock</c>, opened with libc's <c>open</c> so that .NET's own
/// FileShare emulation (a shared flock on every file it opens) cannot meet it. Every change of the directory — an
/// entry made, dropped or evicted, a record appended — happens under it, so processes sharing the directory
/// serialize those few short steps; reads take no lock. The kernel releases it when a process dies (kill -9).
/// Threads of one process serialize on a monitor first, since flock does not exclude holders of the same descriptor.
/// </summary>
internal sealed partial class CacheDirectoryLock : IDisposable
{
    private const int LockExclusive = 2;
    private const int Unlock = 8;
    private const int OpenReadWrite = 2;
    private const int OpenCreate = 0x40;
    private const int OpenCloseOnExec = 0x80000;

    private readonly SafeFileHandle _handle;
    private readonly Lock _threads = new();

    public CacheDirectoryLock(string directory)
    {
        string path = Path.Combine(directory, "lock");
        int fd = Open(path, OpenReadWrite | OpenCreate | OpenCloseOnExec, 0b110_110_100);
        if (fd < 0)
        {
            throw new IOException($"disk cache: cannot open the lock file '{path}': {Marshal.GetLastPInvokeErrorMessage()}");
        }

        _handle = new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Holds the lock until the returned scope is disposed. Nothing awaits while it is held.</summary>
    public Scope Acquire()
    {
        _threads.Enter();
        try
        {
            int r;
            do
            {
                r = Flock((int)_handle.DangerousGetHandle(), LockExclusive);
            }
            while (r < 0 && Marshal.GetLastPInvokeError() == 4); // EINTR
            if (r < 0)
            {
                throw new IOException($"disk cache: cannot lock the cache directory: {Marshal.GetLastPInvokeErrorMessage()}");
            }
        }
        catch
        {
            _threads.Exit();
            throw;
        }

        return new Scope(this);
    }

    public void Dispose() => _handle.Dispose();

    /// <summary>Makes a file's written data durable (<c>fdatasync</c>) before the index may claim it.</summary>
    public static void FlushData(SafeFileHandle file)
    {
        if (FDataSync((int)file.DangerousGetHandle()) < 0)
        {
            throw new IOException($"disk cache: fdatasync failed: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    internal readonly struct Scope(CacheDirectoryLock owner) : IDisposable
    {
        public void Dispose()
        {
            _ = Flock((int)owner._handle.DangerousGetHandle(), Unlock);
            owner._threads.Exit();
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int FDataSync(int fd);
}
