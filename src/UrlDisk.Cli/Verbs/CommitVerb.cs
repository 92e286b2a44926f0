using System.CommandLine;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;
using UrlDisk.Operations;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk commit [-d] [-b BASE] [-f FMT] FILE</c>, as qemu-img commit.</summary>
internal static class CommitVerb
{
    public static Command Create()
    {
        var filename = new Argument<string>("filename") { Description = "Local qcow2 overlay whose clusters go into its base" };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var baseImage = new Option<string?>("--base", "-b") { Description = "The image of the backing chain to commit into (default: the immediate backing file); implies -d" };
        var drop = new Option<bool>("-d") { Description = "Do not empty the overlay afterwards" };
        var progress = new Option<bool>("--progress", "-p") { Description = "Show progress" };
        var cache = CacheMode.Output("Cache mode of the images written, accepted and checked as qemu-img's (the edits are flushed to disk in every mode)");
        var rate = new Option<string?>("-r") { Description = "Rate limit in bytes per second (accepted as in qemu-img, not enforced)" };
        var cmd = new Command("commit", """
            Write the changes recorded in a qcow2 overlay into its base image (as qemu-img commit)

            The base must be a writable local file (raw or qcow2); a remote base is refused. The overlay is
            emptied afterwards unless -d (or -b) is given.

            Examples:
              urldisk commit vm.qcow2
              urldisk commit -d vm.qcow2
              urldisk commit -b base.qcow2 snapshot2.qcow2
            """)
        {
            filename, format, imageOpts, baseImage, drop, progress, cache, rate,
        };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string spec = CliCommon.RequirePath(r.GetValue(filename), "commit: filename");
            CacheMode.FlushesOutput(r.GetValue(cache));
            if (r.GetValue(rate) is { } rateText && !SizeParser.TryParse(rateText, out _))
            {
                throw new OptionException(SizeParser.Error("commit: -r", rateText));
            }

            string? baseName = r.GetValue(baseImage);
            if (baseName is { Length: 0 })
            {
                throw new OptionException("commit: -b: the base name is empty; give an image of the backing chain");
            }

            var tree = CliCommon.ParseSpec(spec, r.GetValue(imageOpts));
            string path = LocalImage.RequirePath(tree, spec, "commit", "commit empties the overlay, so it must be a local file");
            await using var image = await ImageOpener.OpenAsync(tree, r.GetValue(format), new OpenContext { Writable = true, BaseLocation = path }, ct).ConfigureAwait(false);
            if (image is not Qcow2Image top)
            {
                throw new OptionException($"commit: '{Redact.Spec(spec)}' is a {image.Info.Driver} image; commit works on qcow2 overlays");
            }

            if (!top.Info.CanWrite)
            {
                throw new OptionException($"commit: '{Redact.Spec(spec)}' cannot be written here (a compressed file?); commit empties plain local qcow2 overlays");
            }

            using var bar = r.GetValue(progress) && !r.GetValue(CliCommon.Quiet) ? new ProgressBar(top.Length) : null;
            await ImageCommit.CommitAsync(top, spec, baseName, empty: !r.GetValue(drop) && baseName is null, bar is null ? null : bar.Report, ct).ConfigureAwait(false);
            bar?.Finish();
            if (!r.GetValue(CliCommon.Quiet))
            {
                Console.Out.WriteLine("Image committed.");
            }

            return 0;
        }));
        return cmd;
    }
}
