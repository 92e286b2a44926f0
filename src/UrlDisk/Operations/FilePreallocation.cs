using System.Runtime.InteropServices;

namespace UrlDisk.Operations;

/// <summary>
/// qemu-img's <c>-o preallocation=</c> for a raw file: <c>off</c> leaves it sparse, <c>falloc</c> reserves every
/// block (fallocate(2); they read as zeros), <c>full</c> writes zeros into every hole. Data already in the file stays.
/// </summary>
internal static partial class FilePreallocation
{
    private const int SeekData = 3;
    private const int SeekHole = 4;

    /// <summary>The modes a raw file takes (qemu's file driver: no <c>metadata</c>).</summary>
    public static string Check(string? mode, string what) => mode switch
    {
        null or "off" => "off",
        "falloc" or "full" => mode,
        _ => throw new OptionException($"{what}: preallocation={mode} is not allowed for a raw file; use off, falloc or full"),
    };

    /// <summary>Writes zeros over the first 4 KiB (or less, for a smaller file), as qemu-img does for a new raw file.</summary>
    public static void AllocateFirstBlock(string path, long length)
    {
        if (length > 0)
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
            RandomAccess.Write(handle, new byte[(int)Math.Min(4096, length)], 0);
        }
    }

    /// <summary>Allocates the first <paramref name="length"/> bytes of the file at <paramref name="path"/> as <paramref name="mode"/> says.</summary>
    public static void Apply(string path, long length, string mode)
    {
        if (mode == "off" || length == 0)
        {
            return;
        }

        if (!OperatingSystem.IsLinux())
        {
            throw new NotSupportedException($"preallocation={mode} needs Linux (fallocate, SEEK_HOLE); use preallocation=off");
        }

        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        if (mode == "falloc")
        {
            if (Fallocate(handle, 0, 0, length) != 0)
            {
                throw new IOException($"preallocation=falloc: the file system holding '{path}' cannot reserve {length} bytes (fallocate: {Marshal.GetLastPInvokeErrorMessage()})");
            }

            return;
        }

        // full: zeros written into each hole, so every block is really allocated (as qemu does, not fallocate).
        var zeros = new byte[1 << 20];
        int fd = (int)handle.DangerousGetHandle();
        long pos = 0;
        while (pos < length)
        {
            long hole = Lseek(fd, pos, SeekHole);
            if (hole < 0 || hole >= length)
            {
                break;
            }

            long data = Lseek(fd, hole, SeekData);
            long holeEnd = data < 0 || data > length ? length : data;
            for (long at = hole; at < holeEnd; at += zeros.Length)
            {
                RandomAccess.Write(handle, zeros.AsSpan(0, (int)Math.Min(zeros.Length, holeEnd - at)), at);
            }

            pos = holeEnd;
        }
    }

    /// <summary>
    /// Allocates [offset, offset + length) of an open file as <paramref name="mode"/> (off, falloc or full) says: the
    /// part a resize adds to a raw file, as qemu-img resize --preallocation.
    /// </summary>
    public static async Task ApplyAsync(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long offset, long length, string mode, CancellationToken cancellationToken)
    {
        if (length <= 0 || mode == "off")
        {
            return;
        }

        if (mode == "falloc")
        {
            if (!OperatingSystem.IsLinux() || Fallocate(handle, 0, offset, length) != 0)
            {
                throw new IOException($"preallocation=falloc: the file system cannot allocate {length} bytes (fallocate: error {Marshal.GetLastPInvokeError()}); use preallocation=full or off");
            }

            return;
        }

        var zeros = new byte[1 << 20];
        for (long pos = offset; pos < offset + length; pos += zeros.Length)
        {
            int n = (int)Math.Min(zeros.Length, offset + length - pos);
            await RandomAccess.WriteAsync(handle, zeros.AsMemory(0, n), pos, cancellationToken).ConfigureAwait(false);
        }
    }

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int Fallocate(Microsoft.Win32.SafeHandles.SafeFileHandle fd, int mode, long offset, long length);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long Lseek(int fd, long offset, int whence);
}
