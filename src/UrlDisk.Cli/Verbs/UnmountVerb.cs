using System.CommandLine;
using UrlDisk.Cli.Fuse;

namespace UrlDisk.Cli.Verbs;

/// <summary>
/// <c>urldisk unmount MOUNTPOINT</c>: ends a <c>urldisk mount</c>. The serving process then finishes the requests in
/// flight, flushes and exits 0. A mount whose process died (ENOTCONN) is cleared the same way.
/// </summary>
internal static class UnmountVerb
{
    public static Command Create()
    {
        var mountpoint = new Argument<string>("mountpoint") { Description = "Where the image is mounted (the file or directory given to mount)" };
        var cmd = new Command("unmount", "Unmount an image mounted with urldisk mount (also clears a mount whose process died)") { mountpoint };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, ct =>
        {
            string given = CliCommon.RequirePath(r.GetValue(mountpoint), "mountpoint");
            string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(given));
            var entry = MountTable.Find(full);
            if (entry is null && Path.GetDirectoryName(full) is { } parent && MountTable.Find(parent) is { FileSystemType: MountTable.FileSystemType })
            {
                // NAME.raw inside a directory mount: the mount is the directory.
                full = parent;
                entry = MountTable.Find(parent);
            }

            if (entry is null)
            {
                throw new OptionException($"'{given}' is not a mount point");
            }

            if (entry.FileSystemType != MountTable.FileSystemType)
            {
                throw new OptionException($"'{given}' is a {entry.FileSystemType} mount, not one of urldisk mount; use umount");
            }

            FuseMounter.Unmount(full);
            return Task.FromResult(0);
        }));
        return cmd;
    }
}
