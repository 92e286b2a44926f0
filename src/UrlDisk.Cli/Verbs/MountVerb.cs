using System.CommandLine;
using System.Runtime.InteropServices;
using UrlDisk.Cli.Fuse;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary>
/// <c>urldisk mount SPEC MOUNTPOINT</c>: the image's raw view as a file, through FUSE. A regular-file mountpoint
/// becomes the image; a directory gets NAME.raw inside. Runs in the foreground until SIGINT/SIGTERM or
/// <c>urldisk unmount</c>; <c>--daemon</c> returns once the mount is live.
/// </summary>
internal static class MountVerb
{
    /// <summary>Set in the background copy <c>--daemon</c> starts: it detaches once mounted.</summary>
    private const string DaemonChildVariable = "URLDISK_MOUNT_DAEMON_CHILD";
    private const string MountedMarker = "urldisk: mounted ";

    public static Command Create()
    {
        var filename = new Argument<string>("filename") { Description = "Path, URL or json: spec of the image" };
        var mountpoint = new Argument<string>("mountpoint") { Description = "An existing regular file (it becomes the image) or directory (the image appears as NAME.raw in it)" };
        var readOnly = new Option<bool>("--read-only", "-r") { Description = "Mount read-only (remote sources without an overlay always are)" };
        var copyOnRead = new Option<bool>("--copy-on-read") { Description = "Copy data read from a backing file into the image (qcow2 overlays)" };
        var foreground = new Option<bool>("--foreground") { Description = "Stay in the foreground until unmounted (the default)" };
        var daemon = new Option<bool>("--daemon") { Description = "Return once the mount is live and keep serving it in the background" };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var cmd = new Command("mount", "Mount an image as a local file (FUSE) that any program can read and write")
        {
            filename, mountpoint, readOnly, copyOnRead, foreground, daemon, format, imageOpts,
        };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            if (r.GetValue(daemon) && r.GetValue(foreground))
            {
                throw new OptionException("--daemon and --foreground exclude each other; give one");
            }

            string spec = r.GetValue(filename)!;
            string given = CliCommon.RequirePath(r.GetValue(mountpoint), "mountpoint");
            string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(given));
            bool directory = CheckMountpoint(given, full);
            if (r.GetValue(daemon) && Environment.GetEnvironmentVariable(DaemonChildVariable) is null)
            {
                return await RunInBackgroundAsync(ct).ConfigureAwait(false);
            }

            var tree = CliCommon.ParseSpec(spec, r.GetValue(imageOpts));
            string? fileName = directory ? RawName(tree) : null;
            return await MountAsync(spec, given, full, fileName, r.GetValue(readOnly), r.GetValue(copyOnRead), r.GetValue(imageOpts), r.GetValue(format), ct).ConfigureAwait(false);
        }));
        return cmd;
    }

    private static async Task<int> MountAsync(string spec, string given, string full, string? fileName, bool readOnly, bool copyOnRead, bool imageOpts, string? format, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; CancelUnlessDisposed(stop); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; CancelUnlessDisposed(stop); });
        await using var image = await ServeVerb.OpenAsync(spec, imageOpts, format, readOnly, copyOnRead, stop.Token, "mounting").ConfigureAwait(false);
        bool writable = !readOnly && image.Info.CanWrite;
        int fd = FuseMounter.Mount(full, fileName is not null, !writable);
        var session = new FuseSession(fd, image, writable, fileName, Console.Error);
        try
        {
            session.Start();
            await session.Initialized.WaitAsync(stop.Token).ConfigureAwait(false);
            FuseMounter.RaiseReadahead(full);
            string where = fileName is null ? given : Path.Combine(given, fileName);
            Console.Error.WriteLine($"{MountedMarker}{InfoVerb.DisplayFilename(spec)} ({(writable ? "read-write" : "read-only")}, {image.Length} bytes) at {where}");
            if (Environment.GetEnvironmentVariable(DaemonChildVariable) is not null)
            {
                Detach();
            }

            // Until a signal, or until the mount went away (urldisk unmount, umount): then every reader sees ENODEV.
            await Task.WhenAny(session.Ended, Task.Delay(Timeout.Infinite, stop.Token)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // A signal before the kernel's INIT arrived: unmount all the same.
        }
        finally
        {
            if (!session.Ended.IsCompleted)
            {
                try
                {
                    FuseMounter.Unmount(full);
                }
                catch (IOException e)
                {
                    Console.Error.WriteLine("urldisk: " + e.Message);
                }

                // A lazy unmount ends the connection once the last open file closes; do not wait for that forever.
                await Task.WhenAny(session.Ended, Task.Delay(TimeSpan.FromSeconds(5), CancellationToken.None)).ConfigureAwait(false);
            }

            await session.DrainAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false);
            if (writable && image.Info.CanFlush)
            {
                await image.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            }

            FuseNative.Close(fd);
        }

        return 0;
    }

    /// <summary>True for a directory, false for a regular file; anything else, a dead mount or a busy mountpoint is refused.</summary>
    private static bool CheckMountpoint(string given, string full)
    {
        int errno = FuseNative.StatErrno(full);
        if (errno == UrlDisk.Fuse.Wire.Errno.ENOTCONN)
        {
            throw new OptionException($"mountpoint '{given}' is a dead mount (its process ended); clear it with: urldisk unmount {given}");
        }

        if (errno != 0)
        {
            throw new OptionException($"mountpoint '{given}': {Marshal.GetPInvokeErrorMessage(errno)}; create an empty file (touch) or a directory there first");
        }

        if (MountTable.Find(full) is { } existing)
        {
            if (IsDead(full))
            {
                throw new OptionException($"mountpoint '{given}' is a dead mount (its process ended); clear it with: urldisk unmount {given}");
            }

            throw new OptionException($"mountpoint '{given}' is busy: {existing.FileSystemType} is mounted there; unmount it first (urldisk unmount {given})");
        }

        return UnixFileType.Of(full) switch
        {
            UnixFileType.Directory => true,
            UnixFileType.Regular => false,
            _ => throw new OptionException($"mountpoint '{given}' is neither a regular file nor a directory; use an empty file (touch) or a directory"),
        };
    }

    /// <summary>A FUSE mount whose server died answers everything with ENOTCONN (stat may still be served from cached attributes).</summary>
    private static bool IsDead(string full)
    {
        int fd = FuseNative.Open(full, FuseNative.ORdOnly | FuseNative.ONonBlock | FuseNative.OCloExec);
        if (fd >= 0)
        {
            FuseNative.Close(fd);
            return false;
        }

        return FuseNative.Errno == UrlDisk.Fuse.Wire.Errno.ENOTCONN;
    }

    /// <summary>The file's name in a directory mount: the image's own name with .raw, e.g. vm.qcow2 → vm.raw.</summary>
    internal static string RawName(OptionTree tree)
    {
        var node = tree.HasChild("file") ? tree.Child("file") : tree;
        string? name = node["filename"] ?? node["url"];
        if (name is not null)
        {
            int cut = name.IndexOfAny(['?', '#']);
            name = cut >= 0 && ImageOpener.SchemeOf(name) is not (null or "file") ? name[..cut] : name;
            name = Path.GetFileNameWithoutExtension(Uri.UnescapeDataString(name.TrimEnd('/')[(name.TrimEnd('/').LastIndexOf('/') + 1)..]));
        }

        return string.IsNullOrWhiteSpace(name) || name.Contains('\0') || name is "." or ".." ? "disk.raw" : name + ".raw";
    }

    private static Task<int> RunInBackgroundAsync(CancellationToken ct)
        => BackgroundStart.RunAsync("--daemon", DaemonChildVariable, MountedMarker, "mount", ct);

    private static void Detach() => BackgroundStart.Detach();

    private static void CancelUnlessDisposed(CancellationTokenSource stop)
    {
        try
        {
            stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
