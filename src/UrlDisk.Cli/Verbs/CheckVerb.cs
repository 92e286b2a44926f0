using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk check [-r leaks|all] [--output human|json] FILE</c>: exit 0 clean, 2 corruptions, 3 leaks only, 63 format without checks.</summary>
internal static class CheckVerb
{
    public static Command Create()
    {
        var filename = new Argument<string>("filename") { Description = "Path, URL or json: spec of the image" };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var output = CliCommon.Output();
        var repair = new Option<string?>("--repair", "-r") { Description = "Repair: leaks (free leaked clusters) or all (also raise too-low refcounts and fix flags)" };
        var sourceCache = CacheMode.Source();
        var cmd = new Command("check", "Check a qcow2 image's metadata for consistency") { filename, format, imageOpts, output, repair, sourceCache };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string outputFormat = CliCommon.CheckOutputFormat(r.GetValue(output));
            CacheMode.CheckSource(r.GetValue(sourceCache));
            string? mode = r.GetValue(repair);
            if (mode is not (null or "leaks" or "all"))
            {
                throw new UrlDiskException($"check: -r '{mode}' is not allowed; use leaks or all");
            }

            string spec = r.GetValue(filename)!;
            var tree = CliCommon.ParseSpec(spec, r.GetValue(imageOpts));
            string? fmt = r.GetValue(format) ?? tree["driver"];
            var protocolNode = tree.HasChild("file") ? tree.Child("file") : tree;
            var context = new OpenContext { Writable = mode is not null };
            await using var file = await ImageOpener.OpenProtocolAsync(protocolNode, context, ct).ConfigureAwait(false);
            var head = new byte[(int)Math.Min(file.Length, 512)];
            await file.ReadAsync(0, head, ct).ConfigureAwait(false);
            bool isQcow2 = new Qcow2FormatDriver().Probe(head) > 0;
            if ((fmt is not null && fmt != "qcow2") || (fmt is null && !isQcow2))
            {
                Console.Error.WriteLine($"urldisk: this image format{(fmt is null ? "" : $" ({fmt})")} does not support checks (urldisk checks qcow2 only)");
                return 63;
            }

            var result = await Qcow2Checker.CheckAsync(file, mode, ct).ConfigureAwait(false);
            PrintProblems(result, mode is not null);
            if (r.GetValue(CliCommon.Quiet))
            {
                // qemu-img check -q: the exit code (and problem lines on stderr) only, in either output format.
            }
            else if (outputFormat == "json")
            {
                // qemu-img's keys, each count left out when it is zero as qemu-img does (check-errors always printed).
                var o = new JsonObject { ["image-end-offset"] = result.ImageEndOffset };
                AddCount(o, "total-clusters", result.TotalClusters);
                o["check-errors"] = 0;
                AddCount(o, "allocated-clusters", result.AllocatedClusters);
                o["filename"] = InfoVerb.DisplayFilename(spec);
                o["format"] = "qcow2";
                AddCount(o, "fragmented-clusters", result.FragmentedClusters);
                AddCount(o, "compressed-clusters", result.CompressedClusters);
                if (result.Corruptions > 0)
                {
                    o["corruptions"] = result.Corruptions;
                }

                if (result.Leaks > 0)
                {
                    o["leaks"] = result.Leaks;
                }

                if (result.CorruptionsFixed > 0)
                {
                    o["corruptions-fixed"] = result.CorruptionsFixed;
                }

                if (result.LeaksFixed > 0)
                {
                    o["leaks-fixed"] = result.LeaksFixed;
                }

                Console.Out.WriteLine(o.ToJsonString(ImageInfoJson.Indented));
            }
            else
            {
                PrintHuman(result, mode is not null);
            }

            return result.ExitCode;
        }));
        return cmd;
    }

    private static void AddCount(JsonObject o, string key, long count)
    {
        if (count != 0)
        {
            o[key] = count;
        }
    }

    /// <summary>One line per problem on stderr, as qemu-img prints them (the summary goes to stdout).</summary>
    private static void PrintProblems(Qcow2CheckResult r, bool repaired)
    {
        foreach (var m in r.Messages)
        {
            Console.Error.WriteLine((repaired ? "Repairing " : "") + m);
        }
    }

    private static void PrintHuman(Qcow2CheckResult r, bool repaired)
    {
        var w = Console.Out;

        if (repaired && (r.LeaksFixed > 0 || r.CorruptionsFixed > 0))
        {
            w.WriteLine("The following inconsistencies were found and repaired:");
            w.WriteLine();
            w.WriteLine($"    {r.LeaksFixed} leaked clusters");
            w.WriteLine($"    {r.CorruptionsFixed} corruptions");
            w.WriteLine();
            w.WriteLine("Double checking the fixed image now...");
        }

        if (r.Corruptions == 0 && r.Leaks == 0)
        {
            w.WriteLine("No errors were found on the image.");
        }

        if (r.Corruptions > 0)
        {
            w.WriteLine();
            w.WriteLine($"{r.Corruptions} errors were found on the image.");
            w.WriteLine("Data may be corrupted, or further writes to the image may corrupt it.");
        }

        if (r.Leaks > 0)
        {
            w.WriteLine();
            w.WriteLine($"{r.Leaks} leaked clusters were found on the image.");
            w.WriteLine("This means waste of disk space, but no harm to data.");
        }

        if (r.TotalClusters > 0 && r.AllocatedClusters > 0)
        {
            double pct(long n) => 100.0 * n / r.TotalClusters;
            w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.AllocatedClusters}/{r.TotalClusters} = {pct(r.AllocatedClusters):F2}% allocated, {(r.AllocatedClusters == 0 ? 0 : 100.0 * r.FragmentedClusters / r.AllocatedClusters):F2}% fragmented, {(r.AllocatedClusters == 0 ? 0 : 100.0 * r.CompressedClusters / r.AllocatedClusters):F2}% compressed clusters"));
        }

        w.WriteLine($"Image end offset: {r.ImageEndOffset}");
    }
}
