using System.CommandLine;
using System.Globalization;
using System.Text;
using UrlDisk.Specs;

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
        var startOffset = new Option<string?>("--start-offset") { Description = "Map from this byte offset (k, M, G… suffixes allowed); default 0" };
        var maxLength = new Option<string?>("--max-length") { Description = "Map at most this many bytes (k, M, G… suffixes allowed); default to the end" };
        var cmd = new Command("map", "Show where the image's data lives (allocation, zeros, depth in the backing chain, host offset)") { filename, format, imageOpts, output, startOffset, maxLength };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string outputFormat = CliCommon.CheckOutputFormat(r.GetValue(output));
            long start = Bytes(r.GetValue(startOffset), "--start-offset", 0);
            long max = Bytes(r.GetValue(maxLength), "--max-length", long.MaxValue);
            string spec = r.GetValue(filename)!;
            await using var image = await CliCommon.OpenAsync(spec, r.GetValue(imageOpts), r.GetValue(format), null, ct).ConfigureAwait(false);
            long end = start + Math.Min(max, Math.Max(0, image.Length - start));
            var chain = await BackingChain.WalkAsync(image, InfoVerb.DisplayFilename(spec), ct).ConfigureAwait(false);
            var extents = QemuView(await AllExtentsAsync(image, start, end, ct).ConfigureAwait(false), chain);
            var w = Console.Out;
            if (outputFormat == "json")
            {
                // qemu-img prints one empty entry when there is nothing to map (start at or past the end).
                var entries = extents.Count > 0 ? extents : [new Entry(new Extent(start, 0, ExtentFlags.Hole), Present: false, Zero: false, Data: false, Offset: null)];
                var sb = new StringBuilder("[");
                for (int i = 0; i < entries.Count; i++)
                {
                    var e = entries[i];
                    sb.Append(i == 0 ? "" : ",\n");
                    sb.Append(CultureInfo.InvariantCulture, $"{{ \"start\": {e.Extent.Offset}, \"length\": {e.Extent.Length}, \"depth\": {e.Extent.Depth}, \"present\": {Bool(e.Present)}, \"zero\": {Bool(e.Zero)}, \"data\": {Bool(e.Data)}");
                    if (e.Offset is { } host)
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
                w.WriteLine($"{"Offset",-16}{"Length",-16}{"Mapped to",-16}File");
                foreach (var e in extents.Where(e => e.Data))
                {
                    if (e.Offset is not { } host)
                    {
                        // The human form has no column for data without a place in a file, and qemu-img stops here too.
                        throw new UrlDiskException("File contains external, encrypted or compressed clusters.");
                    }

                    string file = e.Extent.Depth < chain.Count ? chain[e.Extent.Depth].Name : "?";
                    w.WriteLine($"{Hex(e.Extent.Offset),-16}{Hex(e.Extent.Length),-16}{Hex(host),-16}{file}");
                }
            }

            return 0;
        }));
        return cmd;
    }

    /// <summary>One map entry with qemu's flags: present (allocated at its depth), zero, data, and the host offset.</summary>
    private readonly record struct Entry(Extent Extent, bool Present, bool Zero, bool Data, long? Offset);

    /// <summary>
    /// qemu's view of each extent. A raw image has no allocation of its own: every byte is present, and a hole in its
    /// file is a zero run at a known offset (qemu-img: <c>present: true, zero: true</c> with an offset).
    /// </summary>
    private static List<Entry> QemuView(List<Extent> extents, List<(string Name, IBlockDevice Device)> chain)
    {
        var entries = new List<Entry>(extents.Count);
        foreach (var e in extents)
        {
            long? rawOffset = e.Depth < chain.Count ? RawOffset(chain[e.Depth].Device) : null;
            if (e.IsHole && rawOffset is { } at)
            {
                entries.Add(new Entry(e, Present: true, Zero: true, Data: false, Offset: e.HostOffset ?? at + e.Offset));
            }
            else
            {
                entries.Add(new Entry(e, Present: !e.IsHole, Zero: e.IsZero, Data: !e.IsZero && !e.IsHole, Offset: e.HostOffset));
            }
        }

        return entries;
    }

    /// <summary>Where a raw image starts in its file, or null when the device is not a raw image.</summary>
    private static long? RawOffset(IBlockDevice device)
    {
        for (IBlockDevice? d = device; d is not null; d = d.Info.Child)
        {
            if (d is UrlDisk.Formats.Raw.RawImage raw)
            {
                return raw.Offset;
            }

            if (d.Info.Driver != "raw")
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>A size option as qemu-img takes it (a whole number, k/M/G… suffixes), not negative.</summary>
    private static long Bytes(string? text, string option, long absent)
    {
        if (text is null)
        {
            return absent;
        }

        if (!SizeParser.TryParse(text, out long bytes) || bytes < 0)
        {
            throw new UrlDiskException(SizeParser.Error($"map: {option}", text) + "; allowed: a byte count, with k, M, G, T, P or E suffixes");
        }

        return bytes;
    }

    private static string Bool(bool b) => b ? "true" : "false";

    /// <summary>printf's %#x: "0" for zero, else 0x-prefixed.</summary>
    private static string Hex(long v) => v == 0 ? "0" : "0x" + v.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>The extents of [start, end), merged where qemu-img merges them (same flags, depth and contiguous host offset).</summary>
    public static async Task<List<Extent>> AllExtentsAsync(IBlockDevice image, long start, long end, CancellationToken ct)
    {
        var all = new List<Extent>();
        long pos = start;
        while (pos < end)
        {
            long before = pos;
            var part = await image.GetExtentsAsync(pos, end - pos, ct).ConfigureAwait(false);
            if (part.Count == 0)
            {
                break;
            }

            foreach (var whole in part)
            {
                var e = Clip(whole, pos, end);
                if (e.Length <= 0)
                {
                    continue;
                }

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

            if (pos == before)
            {
                break; // no progress: a device that answered outside the range asked
            }
        }

        return all;
    }

    /// <summary>The part of an extent inside [from, to), its host offset moved along with its start.</summary>
    private static Extent Clip(Extent e, long from, long to)
    {
        long s = Math.Max(e.Offset, from);
        long t = Math.Min(e.End, to);
        return e with { Offset = s, Length = t - s, HostOffset = e.HostOffset + (s - e.Offset) };
    }
}
