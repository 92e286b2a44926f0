using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk info</c>: size, format and what was learned about the source, as qemu-img info prints them.</summary>
internal static class InfoVerb
{
    public static Command Create()
    {
        var filename = new Argument<string>("filename") { Description = "Path, URL or json: spec of the image" };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var output = CliCommon.Output();
        var backingChain = new Option<bool>("--backing-chain") { Description = "Show every image of the backing chain" };
        var cmd = new Command("info", "Show the image's virtual size, format and source details") { filename, format, imageOpts, output, backingChain };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string outputFormat = CliCommon.CheckOutputFormat(r.GetValue(output));
            string spec = r.GetValue(filename)!;
            await using var image = await CliCommon.OpenAsync(spec, r.GetValue(imageOpts), r.GetValue(format), null, ct).ConfigureAwait(false);
            var json = Describe(image, DisplayFilename(spec));
            if (r.GetValue(backingChain))
            {
                await PrintChainAsync(image, json, outputFormat, ct).ConfigureAwait(false);
                return 0;
            }

            if (outputFormat == "json")
            {
                Console.Out.WriteLine(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            }
            else
            {
                PrintHuman(json, Console.Out);
            }

            return 0;
        }));
        return cmd;
    }

    public static string DisplayFilename(string spec) => Redact.Spec(spec);

    /// <summary>The image and each backing image below it (a JSON array, or human blocks separated by blank lines).</summary>
    private static async Task PrintChainAsync(IBlockDevice image, JsonObject top, string outputFormat, CancellationToken ct)
    {
        var all = new List<JsonObject> { top };
        IBlockDevice? current = image;
        while (current is IHasBacking q && q.BackingLocation is { } location && all.Count <= UrlDisk.Opening.OpenContext.MaxChainDepth)
        {
            current = await q.GetBackingAsync(ct).ConfigureAwait(false);
            if (current is null)
            {
                break;
            }

            all.Add(Describe(current, DisplayFilename(location)));
        }

        if (outputFormat == "json")
        {
            Console.Out.WriteLine(new JsonArray([.. all]).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return;
        }

        for (int i = 0; i < all.Count; i++)
        {
            if (i > 0)
            {
                Console.Out.WriteLine();
            }

            PrintHuman(all[i], Console.Out);
        }
    }

    /// <summary>qemu-img's keys (<c>virtual-size</c>, <c>filename</c>, <c>format</c>) plus <c>format-specific</c> and <c>source</c>.</summary>
    public static JsonObject Describe(IBlockDevice image, string filename)
    {
        var o = new JsonObject
        {
            ["virtual-size"] = image.Length,
            ["filename"] = filename,
            ["format"] = image.Info.Driver,
        };
        bool topIsSource = image.Info.Details.ContainsKey("protocol");
        if (image.Info.Details.Count > 0 && !topIsSource)
        {
            o["format-specific"] = ToJson(image.Info.Details);
        }

        // The bottom of the graph is the source: what the protocol learned.
        IBlockDevice source = image;
        while (source.Info.Child is { } child)
        {
            source = child;
        }

        if (!ReferenceEquals(source, image) || topIsSource)
        {
            var s = ToJson(source.Info.Details);
            s["size"] = source.Length;
            o["source"] = s;
        }

        return o;
    }

    private static JsonObject ToJson(IReadOnlyDictionary<string, object?> details)
    {
        var o = new JsonObject();
        foreach (var (k, v) in details)
        {
            o[k] = ToJson(v);
        }

        return o;
    }

    /// <summary>The closed set of value types <see cref="BlockDeviceInfo.Details"/> holds, mapped without reflection.</summary>
    private static JsonNode? ToJson(object? value) => value switch
    {
        null => null,
        string text => Redact.Spec(text), // a last guard: no credentials in output, whatever a driver reports
        bool b => b,
        int i => i,
        uint u => u,
        long l => l,
        ulong ul => ul,
        IReadOnlyDictionary<string, object?> d => ToJson(d),
        IEnumerable<IReadOnlyDictionary<string, object?>> list => new JsonArray([.. list.Select(d => (JsonNode)ToJson(d))]),
        _ => throw new InvalidOperationException($"info: a detail of type {value.GetType().Name} has no JSON form"),
    };

    private static void PrintHuman(JsonObject o, TextWriter w)
    {
        long size = o["virtual-size"]!.GetValue<long>();
        w.WriteLine($"image: {o["filename"]}");
        w.WriteLine($"file format: {o["format"]}");
        w.WriteLine($"virtual size: {SizeParser.Format(size)} ({size} bytes)");
        if (o["format-specific"] is JsonObject fs)
        {
            w.WriteLine("Format specific information:");
            PrintObject(fs, w, "    ");
        }

        if (o["source"] is JsonObject src)
        {
            w.WriteLine("Source:");
            PrintObject(src, w, "    ");
        }
    }

    private static void PrintObject(JsonObject o, TextWriter w, string indent)
    {
        foreach (var (k, v) in o)
        {
            if (v is JsonObject child)
            {
                w.WriteLine($"{indent}{k}:");
                PrintObject(child, w, indent + "    ");
            }
            else if (v is JsonArray objects && objects.Count > 0 && objects.All(x => x is JsonObject))
            {
                // A list of records (qcow2 snapshots): one indented block each, as qemu-img prints lists.
                w.WriteLine($"{indent}{k}:");
                for (int i = 0; i < objects.Count; i++)
                {
                    w.WriteLine($"{indent}    [{i}]:");
                    PrintObject((JsonObject)objects[i]!, w, indent + "        ");
                }
            }
            else if (v is JsonArray arr)
            {
                w.WriteLine($"{indent}{k}: {string.Join(", ", arr.Select(x => x?.ToString()))}");
            }
            else
            {
                w.WriteLine($"{indent}{k}: {v?.ToString() ?? "-"}");
            }
        }
    }
}
