using UrlDisk.Cli.Verbs;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;
using UrlDisk.Sources.File;

namespace UrlDisk.Cli.Serve;

/// <summary>
/// <c>serve -s/--snapshot</c>, as qemu-nbd's: a temporary qcow2 overlay over the image takes every write, so the image
/// is never written. The overlay lives in TMPDIR (default /tmp) and is unlinked as soon as it is open, so nothing is
/// left behind even when the server is killed.
/// </summary>
internal static class ServeSnapshot
{
    public static async ValueTask<IBlockDevice> OpenAsync(string spec, bool imageOpts, string? format, bool readOnly, bool copyOnRead, CancellationToken ct)
    {
        if (imageOpts)
        {
            throw new OptionException("--snapshot with --image-opts is not supported; give the image as a path, URL or json: spec");
        }

        // The overlay names the image as its backing file: by absolute path when local, as given otherwise.
        var tree = CliCommon.ParseSpec(spec, imageOpts: false);
        bool local = ServeVerb.IsLocalFile(tree) && !spec.StartsWith("json:", StringComparison.Ordinal);
        string backing = local ? Path.GetFullPath(FileDriver.ToPath(spec)) : spec;
        string backingFormat;
        long size;
        await using (var image = await CliCommon.OpenAsync(spec, false, format, new OpenContext(), ct).ConfigureAwait(false))
        {
            backingFormat = format ?? image.Info.Driver;
            size = image.Length;
        }

        string overlay = Path.Combine(Path.GetTempPath(), $"urldisk-snapshot-{Environment.ProcessId}-{Guid.NewGuid():N}.qcow2");
        try
        {
            await Qcow2Creator.CreateAsync(overlay, size, new Qcow2CreateOptions { BackingFile = backing, BackingFormat = backingFormat }, ct).ConfigureAwait(false);
            var context = new OpenContext { Writable = !readOnly, CopyOnRead = copyOnRead };
            return await ImageOpener.OpenAsync(CliCommon.ParseSpec(overlay, false), "qcow2", context, ct).ConfigureAwait(false);
        }
        finally
        {
            // Open (or failed): the name is no longer needed; the open handle keeps the data until exit.
            File.Delete(overlay);
        }
    }
}
