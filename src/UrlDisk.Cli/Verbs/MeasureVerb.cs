using System.CommandLine;
using System.Globalization;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Operations;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk measure</c>: the file size a new image needs, as qemu-img measure prints it.</summary>
internal static class MeasureVerb
{
    public static Command Create()
    {
        var filename = new Argument<string?>("filename") { Description = "Image to measure as if converted (path, URL or json: spec); or give --size", Arity = ArgumentArity.ZeroOrOne };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var output = CliCommon.Output();
        var outputFormat = new Option<string>("-O") { Description = "Format of the new image: raw or qcow2", DefaultValueFactory = _ => "raw" };
        var options = new Option<string[]>("-o") { Description = "Options of the new image: for qcow2 cluster_size, compat, refcount_bits, extended_l2, compression_type, lazy_refcounts, backing_file, backing_fmt, preallocation; for raw preallocation" };
        var size = new Option<string?>("--size") { Description = "Measure a new empty image of this size (e.g. 10G) instead of a file" };
        var snapshot = new Option<string?>("-l") { Description = "Snapshot of the source (not supported: refused)" };
        var cmd = new Command("measure", """
            Calculate the file size a new image needs (as qemu-img measure)

            Examples:
              urldisk measure -O qcow2 --size 100G
              urldisk measure -O qcow2 --output json https://host/images/disk.raw
              urldisk measure -O qcow2 -o cluster_size=2M disk.qcow2
            """)
        {
            filename, format, imageOpts, output, outputFormat, options, size, snapshot,
        };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string outputMode = CliCommon.CheckOutputFormat(r.GetValue(output));
            string target = r.GetValue(outputFormat)!;
            if (!ImageMeasure.Formats.Contains(target))
            {
                throw new OptionException($"measure: -O {target}: urldisk measures raw and qcow2 targets only (as qemu-img, which has no size measurement for most other formats)");
            }

            if (r.GetValue(snapshot) is not null)
            {
                throw new OptionException("measure: -l: internal snapshots are not supported; measure the image itself");
            }

            string? spec = r.GetValue(filename);
            string? sizeText = r.GetValue(size);
            if (spec is not null && sizeText is not null)
            {
                throw new OptionException("measure: --size N cannot be used together with a filename");
            }

            if (spec is null && sizeText is null)
            {
                throw new OptionException("measure: either --size N or one filename must be given");
            }

            long bytes = 0;
            if (sizeText is not null && !SizeParser.TryParse(sizeText, out bytes))
            {
                throw new OptionException(SizeParser.Error("measure: --size", sizeText));
            }

            var (qcow2, preallocation) = ParseOptions(target, string.Join(',', r.GetValue(options) ?? []));
            ImageMeasurement m;
            if (spec is null)
            {
                m = await ImageMeasure.MeasureAsync(null, bytes, target, qcow2, preallocation, sourceHasBitmaps: false, ct).ConfigureAwait(false);
            }
            else
            {
                await using var source = await CliCommon.OpenAsync(spec, r.GetValue(imageOpts), r.GetValue(format), null, ct).ConfigureAwait(false);

                // qemu-img shows a bitmaps size when the source can carry persistent bitmaps (qcow2 version 3).
                bool bitmaps = source is Qcow2Image { Header.Version: >= 3 };
                m = await ImageMeasure.MeasureAsync(source, 0, target, qcow2, preallocation, bitmaps, ct).ConfigureAwait(false);
            }

            Console.Out.Write(outputMode == "json" ? Json(m) : Human(m));
            return 0;
        }));
        return cmd;
    }

    /// <summary>The target's -o options; preallocation is measured here (create takes only off).</summary>
    private static (Qcow2CreateOptions Qcow2, string Preallocation) ParseOptions(string target, string text)
    {
        var tree = text.Length == 0 ? new OptionTree() : SpecParser.ParseKeyValue(text);
        string preallocation = tree["preallocation"] ?? "off";
        tree["preallocation"] = null;
        var allowed = target == "raw" ? new[] { "off", "falloc", "full" } : ["off", "metadata", "falloc", "full"];
        if (!allowed.Contains(preallocation))
        {
            throw new OptionException($"measure: preallocation={preallocation} is not allowed for {target}; use {string.Join(", ", allowed)}");
        }

        if (target == "raw")
        {
            tree.RejectUnknown("raw", ["preallocation"]);
            return (new Qcow2CreateOptions(), preallocation);
        }

        string rest = string.Join(',', tree.Pairs.Select(p => p.Key + "=" + p.Value.Replace(",", ",,", StringComparison.Ordinal)));
        var o = Qcow2CreateOptions.Parse(rest.Length == 0 ? null : rest);
        if (o.BackingFile is not null && o.BackingFormat is null)
        {
            // Only the presence of a backing file matters to the size.
            o = o with { BackingFormat = "raw" };
        }

        return (o, preallocation);
    }

    private static string Human(ImageMeasurement m)
        => string.Create(CultureInfo.InvariantCulture, $"required size: {m.Required}\nfully allocated size: {m.FullyAllocated}\n")
            + (m.Bitmaps is { } b ? string.Create(CultureInfo.InvariantCulture, $"bitmaps size: {b}\n") : "");

    /// <summary>qemu-img's JSON, byte for byte: four-space indent, bitmaps first when present.</summary>
    private static string Json(ImageMeasurement m)
    {
        var lines = new List<string>();
        if (m.Bitmaps is { } b)
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"    \"bitmaps\": {b}"));
        }

        lines.Add(string.Create(CultureInfo.InvariantCulture, $"    \"required\": {m.Required}"));
        lines.Add(string.Create(CultureInfo.InvariantCulture, $"    \"fully-allocated\": {m.FullyAllocated}"));
        return "{\n" + string.Join(",\n", lines) + "\n}\n";
    }
}
