using System.CommandLine;
using UrlDisk.Operations;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk resize [--shrink] [-f FMT] [--preallocation=…] FILE [+|-]SIZE</c>, as qemu-img resize.</summary>
internal static class ResizeVerb
{
    public static Command Create()
    {
        var filename = new Argument<string>("filename") { Description = "Local image to resize (raw or qcow2)" };
        var size = new Argument<string>("size") { Description = "New size (e.g. 20G), or a change: +5G, -1G" };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var shrink = new Option<bool>("--shrink") { Description = "Allow a smaller size: the data past the new end is lost (shrink the file systems inside first)" };
        var preallocation = new Option<string>("--preallocation") { Description = "How the new area is allocated: off, falloc or full; qcow2 also metadata (clusters mapped, data not written)", DefaultValueFactory = _ => "off" };
        var cmd = new Command("resize", """
            Change the virtual size of a local raw or qcow2 image (as qemu-img resize)

            Examples:
              urldisk resize disk.qcow2 +10G
              urldisk resize --shrink disk.raw 8G
              urldisk resize --preallocation=falloc disk.raw 20G
            """)
        {
            filename, size, format, imageOpts, shrink, preallocation,
        };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string spec = CliCommon.RequirePath(r.GetValue(filename), "resize: filename");
            string sizeText = r.GetValue(size)!;
            int sign = sizeText.StartsWith('+') ? 1 : sizeText.StartsWith('-') ? -1 : 0;
            string magnitude = sign == 0 ? sizeText : sizeText[1..];
            if (!SizeParser.TryParse(magnitude, out long bytes))
            {
                throw new OptionException(SizeParser.Error("resize: size", sizeText));
            }

            var tree = CliCommon.ParseSpec(spec, r.GetValue(imageOpts));
            string path = LocalImage.RequirePath(tree, spec, "resize", "only local files can be resized (convert it to a local file first)");
            // As qemu-img, a change is applied to the size in whole 512-byte sectors (a 1000-byte raw file +25 is 1049).
            Func<long, long> newSize = sign switch
            {
                0 => _ => bytes,
                > 0 => old => Sectors(old) > long.MaxValue - bytes ? throw new OptionException($"resize: {old} + {bytes} bytes is too large") : Sectors(old) + bytes,
                _ => old => Sectors(old) - bytes,
            };
            await ImageResizer.ResizeAsync(tree, path, r.GetValue(format), newSize, r.GetValue(shrink), r.GetValue(preallocation)!, ct).ConfigureAwait(false);
            if (!r.GetValue(CliCommon.Quiet))
            {
                Console.Out.WriteLine("Image resized.");
            }

            return 0;
        }));
        return cmd;
    }

    private static long Sectors(long size) => size > long.MaxValue - 511 ? size : (size + 511) & ~511L;
}
