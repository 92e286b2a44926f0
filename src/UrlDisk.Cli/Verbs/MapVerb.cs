using System.CommandLine;
using System.Globalization;
using System.Text;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk map [--output human|json] FILE</c>: allocation through the backing chain, in qemu-img map's keys.</summary>
internal static class MapVerb
{
    public static Command Create()
    {
        var filename = new Argument<string>("filename") { Description = "Path, URL or json: spec of the image" };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var output = CliCommon.Output();
        var cmd = new Command("map", "Show where the image's data lives (allocation, zeros, depth in the backing chain, host offset)") { filename, format, imageOpts, output };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string outputFormat = CliCommon.CheckOutputFormat(r.GetValue(output));
            string spec = r.GetValue(filename)!;
            await using var image = await CliCommon.OpenAsync(spec, r.GetValue(imageOpts), r.GetValue(format), null, ct).ConfigureAwait(false);
            var extents = await AllExtentsAsync(image, ct).ConfigureAwait(false);
            var w = Console.Out;
            if (outputFormat == "json")
            {
                var sb = new StringBuilder("[");
                for (int i = 0; i < extents.Count; i++)
                {
                    var e = extents[i];
                    sb.Append(i == 0 ? "" : ",\n");
                    sb.Append(CultureInfo.InvariantCulture, $"{{ \"start\": {e.Offset}, \"length\": {e.Length}, \"depth\": {e.Depth}, \"present\": {Bool(!e.IsHole)}, \"zero\": {Bool(e.IsZero)}, \"data\": {Bool(!e.IsZero && !e.IsHole)}");
                    if (e.HostOffset is { } host)
                    {
                        sb.Append(CultureInfo.InvariantCulture, $", \"offset\": {host}");
                    }

                    sb.Append('}');
                }

                sb.Append(']');
                w.WriteLine(sb.ToString());
            }
            else
            {
                var names = await ChainNamesAsync(image, InfoVerb.DisplayFilename(spec), ct).ConfigureAwait(false);
                w.WriteLine($"{"Offset",-16}{"Length",-16}{"Mapped to",-16}File");
                foreach (var e in extents)
                {
                    if (e.HostOffset is { } host && !e.IsZero)
                    {
                        string file = e.Depth < names.Count ? names[e.Depth] : "?";
                        w.WriteLine($"{Hex(e.Offset),-16}{Hex(e.Length),-16}{Hex(host),-16}{file}");
                    }
                }
            }

            return 0;
        }));
        return cmd;
    }

    private static string Bool(bool b) => b ? "true" : "false";

    /// <summary>printf's %#x: "0" for zero, else 0x-prefixed.</summary>
    private static string Hex(long v) => v == 0 ? "0" : "0x" + v.ToString("x", CultureInfo.InvariantCulture);

    public static async Task<List<Extent>> AllExtentsAsync(IBlockDevice image, CancellationToken ct)
    {
        var all = new List<Extent>();
        long pos = 0;
        while (pos < image.Length)
        {
            var part = await image.GetExtentsAsync(pos, image.Length - pos, ct).ConfigureAwait(false);
            if (part.Count == 0)
            {
                break;
            }

            foreach (var e in part)
            {
                var last = all.Count > 0 ? all[^1] : default;
                bool hostContiguous = last.HostOffset is null ? e.HostOffset is null : e.HostOffset == last.HostOffset + last.Length;
                if (all.Count > 0 && last.End == e.Offset && last.Flags == e.Flags && last.Depth == e.Depth && hostContiguous)
                {
                    all[^1] = last with { Length = last.Length + e.Length };
                }
                else
                {
                    all.Add(e);
                }

                pos = e.End;
            }
        }

        return all;
    }

    /// <summary>Display names by depth: the image, then each backing file's location.</summary>
    public static async Task<List<string>> ChainNamesAsync(IBlockDevice image, string topName, CancellationToken ct)
    {
        var names = new List<string> { topName };
        IBlockDevice? current = image;
        while (current is IHasBacking q && q.BackingLocation is { } location && names.Count < 100)
        {
            names.Add(UrlDisk.Specs.Redact.Spec(location));
            current = await q.GetBackingAsync(ct).ConfigureAwait(false);
        }

        return names;
    }
}
