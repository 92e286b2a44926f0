using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using UrlDisk.Formats;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Formats.Vdi;
using UrlDisk.Formats.Vhdx;
using UrlDisk.Formats.Vmdk;
using UrlDisk.Opening;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk check [-r leaks|all] [--output human|json] FILE</c>: exit 0 clean, 1 check failed, 2 corruptions, 3 leaks only, 63 format without checks (qemu-img 7.2 checks qcow2, vmdk, vhdx, vdi).</summary>
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
        var cmd = new Command("check", "Check an image's metadata for consistency (qcow2, vmdk, vhdx, vdi)") { filename, format, imageOpts, output, repair, sourceCache };
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
            var context = ImageOpener.WithBase(new OpenContext { Writable = mode is not null }, protocolNode);
            await using var file = await ImageOpener.OpenProtocolAsync(protocolNode, context, ct).ConfigureAwait(false);
            fmt ??= await ProbeAsync(file, ct).ConfigureAwait(false);
            // qemu-img 7.2 checks these four; vmdk and vdi refuse a repair with the same message (exit 63).
            if (fmt is not ("qcow2" or "vmdk" or "vhdx" or "vdi") || (mode is not null && fmt is "vmdk" or "vdi"))
            {
                Console.Error.WriteLine($"urldisk: this image format{(fmt is null ? "" : $" ({fmt})")} does not support checks{(fmt is "vmdk" or "vdi" ? " with -r (repair)" : "")} (urldisk checks qcow2, vmdk, vhdx and vdi)");
                return 63;
            }

            var result = fmt switch
            {
                "qcow2" => ImageCheckResult.From(await Qcow2Checker.CheckAsync(file, mode, ct).ConfigureAwait(false), mode is not null),
                "vmdk" => await VmdkChecker.CheckAsync(file, context, ct).ConfigureAwait(false),
                "vhdx" => await VhdxChecker.CheckAsync(file, mode, ct).ConfigureAwait(false),
                _ => await VdiChecker.CheckAsync(file, ct).ConfigureAwait(false),
            };
            PrintProblems(result);
            if (result.Failure is not null)
            {
                // qemu-img prints no summary when the check itself failed.
                Console.Error.WriteLine($"urldisk: Check failed: {result.Failure}");
            }
            else if (r.GetValue(CliCommon.Quiet))
            {
                // qemu-img check -q: the exit code (and problem lines on stderr) only, in either output format.
            }
            else if (outputFormat == "json")
            {
                // qemu-img's keys, each count left out when it is zero as qemu-img does (check-errors always printed).
                var o = new JsonObject();
                if (result.ImageEndOffset is { } end)
                {
                    o["image-end-offset"] = end;
                }

                AddCount(o, "total-clusters", result.TotalClusters);
                o["check-errors"] = 0;
                AddCount(o, "allocated-clusters", result.AllocatedClusters);
                o["filename"] = InfoVerb.DisplayFilename(spec);
                o["format"] = result.Format;
                AddCount(o, "fragmented-clusters", result.FragmentedClusters);
                AddCount(o, "compressed-clusters", result.CompressedClusters);
                AddCount(o, "corruptions", result.Corruptions);
                AddCount(o, "leaks", result.Leaks);
                AddCount(o, "corruptions-fixed", result.CorruptionsFixed);
                AddCount(o, "leaks-fixed", result.LeaksFixed);
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

    /// <summary>The format the file's first bytes say (as the opener probes), or null for none that urldisk knows (raw).</summary>
    private static async ValueTask<string?> ProbeAsync(IBlockDevice file, CancellationToken ct)
    {
        var head = new byte[(int)Math.Min(file.Length, 512)];
        await file.ReadAsync(0, head, ct).ConfigureAwait(false);
        var best = Drivers.Formats.Select(d => (d.Name, Score: d.Probe(head))).MaxBy(p => p.Score);
        return best.Score > 1 ? best.Name : null;
    }

    /// <summary>One line per problem on stderr, as qemu-img prints them (the summary goes to stdout).</summary>
    private static void PrintProblems(ImageCheckResult r)
    {
        foreach (var m in r.Messages)
        {
            Console.Error.WriteLine(m);
        }
    }

    private static void PrintHuman(ImageCheckResult r, bool repaired)
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

        if (r.ImageEndOffset is { } end)
        {
            w.WriteLine($"Image end offset: {end}");
        }
    }
}
