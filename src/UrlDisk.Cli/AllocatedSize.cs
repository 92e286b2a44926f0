using System.Runtime.InteropServices;

namespace UrlDisk.Cli;

/// <summary>
/// Bytes a local file takes on disk (st_blocks × 512), which qemu-img info shows as <c>actual-size</c> / <c>disk size</c>.
/// .NET does not expose st_blocks. Linux on x64 and arm64 only; elsewhere (or on error) unknown.
/// </summary>
internal static class AllocatedSize
{
    public static long? Of(string path)
    {
        // st_blocks sits at offset 64 of struct stat on both x86_64 and arm64 Linux.
        const int BlocksOffset = 64;
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            return null;
        }

        var stat = new byte[256];
        try
        {
            return Stat(path, stat) == 0 ? BitConverter.ToInt64(stat, BlocksOffset) * 512 : null;
        }
        catch (EntryPointNotFoundException)
        {
            // glibc before 2.33 exports no stat symbol.
            return null;
        }
    }

    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer);
}
