using System.Globalization;
using System.Text.Json.Nodes;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary>qemu-img info's human form of an <see cref="ImageInfoJson"/> object: its lines in its order, then UrlDisk's extras.</summary>
internal static class ImageInfoHuman
{
    public static void Print(JsonObject o, TextWriter w)
    {
        long size = o["virtual-size"]!.GetValue<long>();
        w.WriteLine($"image: {o["filename"]}");
        w.WriteLine($"file format: {o["format"]}");
        w.WriteLine($"virtual size: {SizeParser.Format(size)} ({size} bytes)");
        w.WriteLine($"disk size: {(o["actual-size"] is { } actual ? SizeParser.Format(actual.GetValue<long>()) : "unavailable")}");
        if (o["cluster-size"] is { } cluster)
        {
            w.WriteLine($"cluster_size: {cluster}");
        }

        if (o["dirty-flag"]?.GetValue<bool>() == true)
        {
            w.WriteLine("cleanly shut down: no");
        }

        if (o["backing-filename"] is { } backing)
        {
            string full = o["full-backing-filename"]?.GetValue<string>() ?? "";
            string note = o["full-backing-filename"] is null ? " (cannot determine actual path)"
                : full != backing.GetValue<string>() ? $" (actual path: {full})" : "";
            w.WriteLine($"backing file: {backing}{note}");
        }

        if (o["backing-filename-format"] is { } backingFormat)
        {
            w.WriteLine($"backing file format: {backingFormat}");
        }

        if (o["snapshots"] is JsonArray snapshots && snapshots.Count > 0)
        {
            w.WriteLine("Snapshot list:");
            w.WriteLine($"{"ID",-10}{"TAG",-17}{"VM SIZE",8}{"DATE",20}{"VM CLOCK",13}{"ICOUNT",11}");
            foreach (var s in snapshots.OfType<JsonObject>())
            {
                w.WriteLine(SnapshotLine(s));
            }
        }

        if (o["format-specific"]?["data"] is JsonObject data)
        {
            w.WriteLine("Format specific information:");
            PrintObject(data, w, 1);
        }

        if (o[ImageInfoJson.ExtraKey] is JsonObject extra && extra.Count > 0)
        {
            w.WriteLine("UrlDisk information:");
            PrintObject(extra, w, 1);
        }
    }

    /// <summary>One row of qemu-img's snapshot table: id, tag, VM state size, local date, VM clock, icount.</summary>
    private static string SnapshotLine(JsonObject s)
    {
        long vmState = s["vm-state-size"]?.GetValue<long>() ?? 0;
        long dateSec = s["date-sec"]?.GetValue<long>() ?? 0;
        long clockSec = s["vm-clock-sec"]?.GetValue<long>() ?? 0;
        long clockNsec = s["vm-clock-nsec"]?.GetValue<long>() ?? 0;
        string date = DateTimeOffset.FromUnixTimeSeconds(dateSec).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        string clock = string.Create(CultureInfo.InvariantCulture, $"{clockSec / 3600:00}:{clockSec / 60 % 60:00}:{clockSec % 60:00}.{clockNsec / 1_000_000:000}");
        string icount = s["icount"]?.ToString() ?? "";
        return $"{s["id"],-9} {s["name"],-16} {SizeParser.Format(vmState),8}{date,20}{clock,13}{icount,11}";
    }

    /// <summary>qemu's human dump of a QAPI object: four spaces a level, dashes in keys shown as spaces, list items as [i].</summary>
    private static void PrintObject(JsonObject o, TextWriter w, int level)
    {
        string indent = new(' ', level * 4);
        foreach (var (key, v) in o)
        {
            string k = key.Replace('-', ' ');
            if (v is JsonObject child)
            {
                w.WriteLine($"{indent}{k}:");
                PrintObject(child, w, level + 1);
            }
            else if (v is JsonArray list)
            {
                w.WriteLine($"{indent}{k}:");
                for (int i = 0; i < list.Count; i++)
                {
                    if (list[i] is JsonObject item)
                    {
                        w.WriteLine($"{indent}    [{i}]:");
                        PrintObject(item, w, level + 2);
                    }
                    else
                    {
                        w.WriteLine($"{indent}    [{i}]: {list[i]}");
                    }
                }
            }
            else
            {
                w.WriteLine($"{indent}{k}: {v?.ToString() ?? "-"}");
            }
        }
    }
}
