using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace UrlDisk.Cli.Fuse;

/// <summary>
/// Creates and removes the kernel mount a <see cref="FuseSession"/> serves: mount(2) as root, the setuid
/// <c>fusermount3</c> (Debian fuse3) otherwise, which hands the mounted /dev/fuse descriptor back over a socket.
/// </summary>
internal static class FuseMounter
{
    public const int MaxRead = 1 << 20;
    private const ulong MsRdOnly = 1;

    public static bool IsRoot => FuseNative.GetEffectiveUserId() == 0;

    /// <summary>Mounts at <paramref name="fullPath"/> and returns the /dev/fuse descriptor to serve.</summary>
    public static int Mount(string fullPath, bool directory, bool readOnly)
        => IsRoot ? MountAsRoot(fullPath, directory, readOnly) : MountWithFusermount(fullPath, readOnly);

    /// <summary>Lazily unmounts (MNT_DETACH): the path is free at once, open files keep working until closed.</summary>
    public static void Unmount(string fullPath)
    {
        if (IsRoot)
        {
            if (FuseNative.Umount2(fullPath, FuseNative.MntDetach) != 0)
            {
                throw new IOException($"cannot unmount {fullPath}: {Marshal.GetPInvokeErrorMessage(FuseNative.Errno)}");
            }

            return;
        }

        var (exit, stderr) = RunFusermount(["-u", "-z", "--", fullPath], null);
        if (exit != 0)
        {
            throw new IOException($"fusermount3 could not unmount {fullPath}: {stderr.Trim()}");
        }
    }

    /// <summary>
    /// Lets the kernel read ahead 1 MiB (max_read) instead of the default 128 KiB, so sequential readers cost one
    /// READ per MiB. Only root may; elsewhere the default stays.
    /// </summary>
    public static void RaiseReadahead(string fullPath)
    {
        if (!IsRoot || MountTable.Find(fullPath) is not { } entry)
        {
            return;
        }

        try
        {
            File.WriteAllText($"/sys/class/bdi/{entry.Device}/read_ahead_kb", (MaxRead / 1024).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static int MountAsRoot(string fullPath, bool directory, bool readOnly)
    {
        int fd = FuseNative.Open("/dev/fuse", FuseNative.ORdWr | FuseNative.OCloExec);
        if (fd < 0)
        {
            throw new IOException($"cannot open /dev/fuse: {Marshal.GetPInvokeErrorMessage(FuseNative.Errno)} (is the fuse module loaded?)");
        }

        // rootmode is octal and must match the mountpoint's type; allow_other lets every user (a VM run as another
        // uid) in, default_permissions makes the kernel check the file's mode bits.
        string options = $"fd={fd},rootmode={(directory ? "40000" : "100000")},user_id={FuseNative.GetEffectiveUserId()},group_id={FuseNative.GetEffectiveGroupId()},allow_other,default_permissions,max_read={MaxRead}";
        ulong flags = FuseNative.MsNoSuid | FuseNative.MsNoDev | (readOnly ? MsRdOnly : 0);
        if (FuseNative.Mount("urldisk", fullPath, MountTable.FileSystemType, flags, options) != 0)
        {
            int errno = FuseNative.Errno;
            FuseNative.Close(fd);
            throw new IOException($"cannot mount on {fullPath}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        return fd;
    }

    private static int MountWithFusermount(string fullPath, bool readOnly)
    {
        if (!FuseNative.TrySocketPair(out int ours, out int theirs))
        {
            throw new IOException($"socketpair: {Marshal.GetPInvokeErrorMessage(FuseNative.Errno)}");
        }

        try
        {
            FuseNative.SetCloseOnExec(ours);
            string options = $"{(readOnly ? "ro" : "rw")},nosuid,nodev,default_permissions,fsname=urldisk,subtype=urldisk,max_read={MaxRead}";
            int fd = -1;
            var (exit, stderr) = RunFusermount(["-o", options, "--", fullPath], theirs, () =>
            {
                FuseNative.Close(theirs);
                theirs = -1;
                fd = FuseNative.ReceiveDescriptor(ours);
            });
            if (fd < 0)
            {
                throw new IOException($"fusermount3 could not mount on {fullPath} (exit {exit}): {stderr.Trim()}");
            }

            FuseNative.SetCloseOnExec(fd);
            return fd;
        }
        finally
        {
            FuseNative.Close(ours);
            if (theirs >= 0)
            {
                FuseNative.Close(theirs);
            }
        }
    }

    /// <summary>Runs fusermount3; <paramref name="commFd"/> becomes its _FUSE_COMMFD, <paramref name="whileRunning"/> runs once it started.</summary>
    private static (int Exit, string Stderr) RunFusermount(string[] args, int? commFd, Action? whileRunning = null)
    {
        var psi = new ProcessStartInfo("fusermount3") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        if (commFd is { } fd)
        {
            psi.Environment["_FUSE_COMMFD"] = fd.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new IOException("could not start fusermount3");
        }
        catch (Win32Exception)
        {
            throw new IOException("fusermount3 was not found: install it (Debian/Ubuntu: apt-get install fuse3) or run as root");
        }

        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEndAsync();
            whileRunning?.Invoke();
            process.WaitForExit();
            return (process.ExitCode, stderr.GetAwaiter().GetResult() + stdout.GetAwaiter().GetResult());
        }
    }
}
