using System.Text.Json;
using System.Text.Json.Nodes;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary>
/// An image described as qemu-img info's ImageInfo (its keys, nesting and types), plus UrlDisk's own facts under one
/// extra key, <c>urldisk</c>: what the protocol learned (<c>source</c>) and any format fact qemu-img has no key for.
/// </summary>
internal static class ImageInfoJson
{
    /// <summary>The extra key; everything qemu-img does not print lives under it.</summary>
    public const string ExtraKey = "urldisk";

    /// <summary>Detail keys a format fills that qemu-img prints at the top level (see <see cref="BlockDeviceInfo.Details"/>).</summary>
    private static readonly string[] TopLevelKeys = ["cluster-size", "dirty-flag", "backing-filename", "full-backing-filename", "backing-filename-format", "snapshots", "format-specific"];

    public static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,
        IndentSize = 4, // as qemu-img
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static JsonObject Describe(IBlockDevice image, string filename)
    {
        var details = image.Info.Details;
        bool topIsSource = details.ContainsKey("protocol");
        IBlockDevice source = image;
        while (source.Info.Child is { } child)
        {
            source = child;
        }

        // qemu-img's key order, so a side-by-side read is easy (parsers do not care).
        var o = new JsonObject();
        Copy(details, "snapshots", o);
        Copy(details, "backing-filename-format", o);
        o["virtual-size"] = image.Length;
        o["filename"] = filename;
        Copy(details, "cluster-size", o);
        o["format"] = image.Info.Driver;
        if (AllocatedBytes(source, details) is { } allocated)
        {
            o["actual-size"] = allocated;
        }

        if (!topIsSource && details.TryGetValue("format-specific", out var specific) && specific is IReadOnlyDictionary<string, object?> data)
        {
            o["format-specific"] = new JsonObject { ["type"] = image.Info.Driver, ["data"] = ToJson(data) };
        }

        Copy(details, "full-backing-filename", o);
        Copy(details, "backing-filename", o);
        bool local = source.Info.Details.TryGetValue("protocol", out var protocol) && protocol is "file";
        if (image.Info.Driver != "raw" || local)
        {
            // qemu-img prints it when the driver answers get_info: every format, and raw only on a local file.
            o["dirty-flag"] = details.TryGetValue("dirty-flag", out var dirty) && dirty is true;
        }

        var extra = new JsonObject();
        if (!topIsSource)
        {
            foreach (var (k, v) in details)
            {
                if (!TopLevelKeys.Contains(k))
                {
                    extra[k] = ToJson(v);
                }
            }
        }

        var s = ToJson(source.Info.Details);
        s["size"] = source.Length;
        extra["source"] = s;
        o[ExtraKey] = extra;
        return o;
    }

    /// <summary>
    /// Bytes the image takes on a local disk: its file, plus for a VMDK the extent files beside it (as qemu-img counts);
    /// unknown (and left out, as qemu-img does) for a URL.
    /// </summary>
    private static long? AllocatedBytes(IBlockDevice source, IReadOnlyDictionary<string, object?> details)
    {
        if (!source.Info.Details.TryGetValue("protocol", out var p) || p is not "file" || !source.Info.Details.TryGetValue("path", out var path) || path is not string local)
        {
            return null;
        }

        long? total = AllocatedSize.Of(local);
        if (total is not null && details.TryGetValue("format-specific", out var specific) && specific is IReadOnlyDictionary<string, object?> data
            && data.TryGetValue("extents", out var extents) && extents is IEnumerable<IReadOnlyDictionary<string, object?>> list)
        {
            string dir = Path.GetDirectoryName(local) ?? ".";
            foreach (var name in list.Select(e => e.TryGetValue("filename", out var f) ? f as string : null).OfType<string>().Distinct())
            {
                string file = Path.GetFullPath(name, dir);
                if (file != local && AllocatedSize.Of(file) is { } more)
                {
                    total += more;
                }
            }
        }

        return total;
    }

    private static void Copy(IReadOnlyDictionary<string, object?> details, string key, JsonObject to)
    {
        if (details.TryGetValue(key, out var v) && v is not null)
        {
            to[key] = ToJson(v);
        }
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
}
