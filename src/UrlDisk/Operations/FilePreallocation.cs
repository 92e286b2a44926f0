using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace UrlDisk.Operations;

/// <summary>Reserving space for a grown raw file: fallocate(2) (<c>falloc</c>) or written zeros (<c>full</c>), as qemu-img resize --preallocation.</summary>
internal static partial class FilePreallocation
{
    /// <summary>Allocates [offset, offset + length) of the file as <paramref name="mode"/> (off, falloc or full) says.</summary>
    public static async Task ApplyAsync(SafeFileHandle handle, long offset, long length, string mode, CancellationToken cancellationToken)
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
    private static partial int Fallocate(SafeFileHandle fd, int mode, long offset, long length);
}
