using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace UrlDisk.Cli;

/// <summary>
/// The <c>./urldisk</c> launcher's "are the sources newer than this build?" check, done here instead of in the
/// shell script, because it runs on every call: sh paid two stat calls and an interpreted loop step per source (~300
/// of them, about 4 ms); this is one read and one statx per source, with no managed file or environment machinery
/// (the libc calls are linked directly: see DirectPInvoke in the project). The launcher passes the list its build was
/// made from (NUL-separated paths, next to the build's stamp) in <see cref="SourcesVariable"/> and its own path in
/// <see cref="LauncherVariable"/>. When a source is newer than the stamp, this process becomes (execv) the launcher
/// with <c>URLDISK_REBUILD=1</c>, which rebuilds and starts the new binary without asking again. Started any other
/// way (the variables absent), nothing happens.
/// </summary>
internal static unsafe partial class LauncherBuildCheck
{
    internal const string SourcesVariable = "URLDISK_LAUNCHER_SOURCES";
    internal const string LauncherVariable = "URLDISK_LAUNCHER";
    private const int AtFdCwd = -100;
    private const uint StatxMtime = 0x40;
    private const int StatxSize = 256;
    private const int StatxMtimeOffset = 112; // struct statx: stx_mtime { s64 tv_sec; u32 tv_nsec; }, the same on every architecture

    /// <summary>Returns when the build is current (or this was not started by the launcher); otherwise runs the
    /// launcher in this process's place, so it returns only if that fails.</summary>
    public static void ExecLauncherIfStale(string[] args)
    {
        string? sources = Marshal.PtrToStringUTF8(GetEnv(SourcesVariable));
        string? launcher = Marshal.PtrToStringUTF8(GetEnv(LauncherVariable));
        if (sources is null || launcher is null)
        {
            return;
        }

        // Before .NET first reads the environment (it copies it once), so children never repeat the check.
        _ = UnsetEnv(SourcesVariable);
        _ = UnsetEnv(LauncherVariable);
        if (!IsStale(sources))
        {
            return;
        }

        int errno = SetEnv("URLDISK_REBUILD", "1", 1) == 0 ? Exec(launcher, args) : Marshal.GetLastPInvokeError();

        // The launcher could not be started: this build still works, so run it and say why it may be old.
        Console.Error.WriteLine($"urldisk: the sources changed since this build, and {launcher} could not be run to rebuild it ({new System.ComponentModel.Win32Exception(errno).Message}); running this build");
    }

    /// <summary>True when the list cannot be read or a listed path was modified after the build's stamp, as sh's
    /// <c>[ path -nt stamp ]</c>: a missing path is not newer (a removed file changes its folder's time, which is listed).</summary>
    internal static bool IsStale(string sourcesFile)
    {
        string? folder = Path.GetDirectoryName(sourcesFile);
        if (folder is null || ModifiedTime(Path.Combine(folder, ".stamp")) is not { } built)
        {
            return true;
        }

        byte[] list;
        try
        {
            list = File.ReadAllBytes(sourcesFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }

        if (list.Length == 0 || list[^1] != 0)
        {
            return true; // every path ends with a NUL; anything else is not a list this launcher wrote
        }

        byte* buffer = stackalloc byte[StatxSize];
        fixed (byte* start = list)
        {
            int from = 0;
            while (from < list.Length)
            {
                int end = Array.IndexOf(list, (byte)0, from);
                if (Statx(AtFdCwd, start + from, 0, StatxMtime, buffer) == 0 && MtimeOf(buffer) > built)
                {
                    return true;
                }

                from = end + 1;
            }
        }

        return false;
    }

    private static long? ModifiedTime(string path)
    {
        byte* buffer = stackalloc byte[StatxSize];
        return Statx(AtFdCwd, path, 0, StatxMtime, buffer) == 0 ? MtimeOf(buffer) : null;
    }

    /// <summary>Nanoseconds since the epoch (a long holds them until 2262).</summary>
    private static long MtimeOf(byte* statx)
    {
        var time = new ReadOnlySpan<byte>(statx + StatxMtimeOffset, 12);
        return (BinaryPrimitives.ReadInt64LittleEndian(time) * 1_000_000_000) + BinaryPrimitives.ReadUInt32LittleEndian(time[8..]);
    }

    /// <summary>Runs <paramref name="path"/> in this process's place; returns errno only when that failed.</summary>
    private static int Exec(string path, string[] args)
    {
        var argv = new nint[args.Length + 2]; // argv[0], the arguments, and the terminating null
        try
        {
            argv[0] = Marshal.StringToCoTaskMemUTF8(path);
            for (int i = 0; i < args.Length; i++)
            {
                argv[i + 1] = Marshal.StringToCoTaskMemUTF8(args[i]);
            }

            fixed (nint* p = argv)
            {
                _ = ExecV(path, p);
                return Marshal.GetLastPInvokeError();
            }
        }
        finally
        {
            foreach (nint s in argv)
            {
                Marshal.FreeCoTaskMem(s);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint GetEnv(string name);

    [LibraryImport("libc", EntryPoint = "unsetenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnsetEnv(string name);

    [LibraryImport("libc", EntryPoint = "setenv", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directory, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "statx")]
    private static partial int Statx(int directory, byte* path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ExecV(string path, nint* argv);
}
