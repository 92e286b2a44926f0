using System.Runtime.InteropServices;

namespace UrlDisk.Cli;

/// <summary>
/// The type bits of a path's mode (lstat), which .NET does not expose: whether a path is a socket.
/// Linux on x64 and arm64 only; elsewhere the type is unknown.
/// </summary>
internal static class UnixFileType
{
    public const int Socket = 0xC000;
    public const int Regular = 0x8000;
    public const int Directory = 0x4000;
    public const int Unknown = -1;
    private const int TypeMask = 0xF000;

    public static int Of(string path)
    {
        // st_mode's place in struct stat: after st_dev, st_ino and st_nlink on x86_64, after st_dev and st_ino on arm64.
        int modeOffset = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 24,
            Architecture.Arm64 => 16,
            _ => -1,
        };
        if (!OperatingSystem.IsLinux() || modeOffset < 0)
        {
            return Unknown;
        }

        var stat = new byte[256];
        try
        {
            if (LStat(path, stat) != 0)
            {
                return Unknown;
            }
        }
        catch (EntryPointNotFoundException)
        {
            // glibc before 2.33 exports no lstat symbol.
            return Unknown;
        }

        return BitConverter.ToInt32(stat, modeOffset) & TypeMask;
    }

    [DllImport("libc", EntryPoint = "lstat", SetLastError = true)]
    private static extern int LStat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer);
}
