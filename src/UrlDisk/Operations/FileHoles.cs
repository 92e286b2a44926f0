using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace UrlDisk.Operations;

/// <summary>
/// Punching holes with Linux fallocate(2), so zeros written into an existing file (<c>convert -n</c>) leave it
/// sparse, as qemu-img does, instead of allocating every zero byte.
/// </summary>
internal static partial class FileHoles
{
    private const int KeepSize = 0x01;   // FALLOC_FL_KEEP_SIZE
    private const int PunchHole = 0x02;  // FALLOC_FL_PUNCH_HOLE (must be combined with KEEP_SIZE)

    /// <summary>Deallocates the range so it reads as zeros; false when the file system or file type cannot (then write zeros).</summary>
    public static bool TryPunch(SafeFileHandle handle, long offset, long length)
        => OperatingSystem.IsLinux() && Fallocate(handle, PunchHole | KeepSize, offset, length) == 0;

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int Fallocate(SafeFileHandle fd, int mode, long offset, long length);
}
