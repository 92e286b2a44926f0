using System.CommandLine;
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
            var json = ImageInfoJson.Describe(image, DisplayFilename(spec));
            if (r.GetValue(backingChain))
            {
                await PrintChainAsync(image, json, outputFormat, ct).ConfigureAwait(false);
            }
            else if (outputFormat == "json")
            {
                Console.Out.WriteLine(json.ToJsonString(ImageInfoJson.Indented));
            }
            else
            {
                ImageInfoHuman.Print(json, Console.Out);
            }

            return 0;
        }));
        return cmd;
    }

    public static string DisplayFilename(string spec) => Redact.Spec(spec);

    /// <summary>The image and each backing image below it (a JSON array, or human blocks separated by blank lines), as qemu-img prints them.</summary>
    private static async Task PrintChainAsync(IBlockDevice image, JsonObject top, string outputFormat, CancellationToken ct)
    {
        var chain = await BackingChain.WalkAsync(image, top["filename"]!.GetValue<string>(), ct).ConfigureAwait(false);
        var all = new List<JsonObject> { top };
        all.AddRange(chain.Skip(1).Select(c => ImageInfoJson.Describe(c.Device, c.Name)));
        if (outputFormat == "json")
        {
            Console.Out.WriteLine(new JsonArray([.. all]).ToJsonString(ImageInfoJson.Indented));
            return;
        }

        for (int i = 0; i < all.Count; i++)
        {
            if (i > 0)
            {
                Console.Out.WriteLine();
            }

            ImageInfoHuman.Print(all[i], Console.Out);
        }
    }
}
