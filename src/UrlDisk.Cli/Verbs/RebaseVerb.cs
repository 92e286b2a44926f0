using System.CommandLine;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;
using UrlDisk.Operations;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk rebase [-u] -b BACKING [-F FMT] [-f FMT] FILE</c>, as qemu-img rebase.</summary>
internal static class RebaseVerb
{
    public static Command Create()
    {
        var filename = new Argument<string>("filename") { Description = "Local qcow2 overlay whose backing file changes" };
        var backing = new Option<string?>("--backing", "-b") { Description = "New backing file (path, URL or json: spec), stored as given; \"\" for none" };
        var backingFormat = new Option<string?>("--backing-format", "-F") { Description = "Format of the new backing file (required with a backing file, as in qemu-img)" };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var unsafeMode = new Option<bool>("-u") { Description = "Unsafe: only rewrite the backing name and format in the header (the old backing file is not read)" };
        var progress = new Option<bool>("--progress", "-p") { Description = "Show progress (safe mode)" };
        var cache = CacheMode.Output("Cache mode of the image, accepted and checked as qemu-img's (the edits are flushed to disk in every mode)");
        var sourceCache = CacheMode.Source();
        var cmd = new Command("rebase", """
            Change the backing file of a qcow2 image (as qemu-img rebase)

            Safe mode (the default) compares the old backing chain with the new backing file and writes the
            clusters that differ into the image, so it reads the same afterwards. -u only rewrites the name:
            the fix when the base image moved (to a new URL) but its contents did not.

            Examples:
              urldisk rebase -u -b https://new-host/images/base.qcow2 -F qcow2 vm.qcow2
              urldisk rebase -b base-v2.qcow2 -F qcow2 vm.qcow2
              urldisk rebase -b "" vm.qcow2
            """)
        {
            filename, backing, backingFormat, format, imageOpts, unsafeMode, progress, cache, sourceCache,
        };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string spec = CliCommon.RequirePath(r.GetValue(filename), "rebase: filename");
            CacheMode.FlushesOutput(r.GetValue(cache));
            CacheMode.CheckSource(r.GetValue(sourceCache));
            string? newName = r.GetValue(backing);
            bool unsafeRebase = r.GetValue(unsafeMode);
            if (newName is null)
            {
                throw new OptionException("rebase: give the new backing file with -b (\"\" for none)");
            }

            string? newFormat = r.GetValue(backingFormat);
            if (newName.Length > 0 && string.IsNullOrEmpty(newFormat))
            {
                throw new OptionException($"rebase: could not change the backing file to '{Redact.Spec(newName)}': give its format with -F (raw, qcow2, …), as qemu-img requires");
            }

            if (newName.Length == 0 && newFormat is not null)
            {
                throw new OptionException("rebase: -F names the format of a backing file; with -b \"\" there is none");
            }

            var tree = CliCommon.ParseSpec(spec, r.GetValue(imageOpts));
            string path = LocalImage.RequirePath(tree, spec, "rebase", "only a local image's header can be rewritten (convert it to a local file first)");
            string? stored = newName.Length == 0 ? null : newName;

            // Opened without its backing chain for -u (the old base may be gone), with it for the safe mode.
            var context = new OpenContext { Writable = !unsafeRebase, NoBacking = unsafeRebase, BaseLocation = path };
            await using (var image = await ImageOpener.OpenAsync(tree, r.GetValue(format), context, ct).ConfigureAwait(false))
            {
                if (image is not Qcow2Image overlay)
                {
                    throw new OptionException($"rebase: '{Redact.Spec(spec)}' is a {image.Info.Driver} image; only qcow2 images have a backing file name to change");
                }

                if (!unsafeRebase)
                {
                    if (!overlay.Info.CanWrite)
                    {
                        throw new OptionException($"rebase: '{Redact.Spec(spec)}' cannot be written here (a compressed file?); rebase writes into plain local qcow2 files");
                    }

                    await using var newBacking = stored is null ? null : await OpenNewBackingAsync(stored, newFormat, path, ct).ConfigureAwait(false);
                    using var bar = r.GetValue(progress) && !r.GetValue(CliCommon.Quiet) ? new ProgressBar(overlay.Length) : null;
                    await BackingRebase.CopyDifferencesAsync(overlay, newBacking, bar is null ? null : bar.Report, ct).ConfigureAwait(false);
                    bar?.Finish();
                }
            }

            await Qcow2BackingEditor.SetBackingAsync(path, stored, stored is null ? null : newFormat, ct).ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }

    /// <summary>The new backing file, resolved against the image's directory as it will be once stored.</summary>
    private static async Task<IBlockDevice> OpenNewBackingAsync(string name, string? format, string overlayPath, CancellationToken ct)
    {
        string location = BackingName.Resolve(name, overlayPath);
        return await ImageOpener.OpenAsync(location, format, new OpenContext(), ct).ConfigureAwait(false);
    }
}

