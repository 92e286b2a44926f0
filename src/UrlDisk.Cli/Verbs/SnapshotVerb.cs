using System.Buffers.Binary;
using System.CommandLine;
using System.Globalization;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk snapshot [-l | -c NAME | -a NAME | -d NAME] FILE</c>: qcow2 internal snapshots, as qemu-img snapshot.</summary>
internal static class SnapshotVerb
{
    public static Command Create()
    {
        var filename = new Argument<string>("filename") { Description = "Path of the qcow2 image (for -l also a URL or json: spec)" };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var list = new Option<bool>("-l") { Description = "List the snapshots (the default); works on remote images too" };
        var create = new Option<string?>("-c") { Description = "Create a snapshot of the current state named NAME" };
        var apply = new Option<string?>("-a") { Description = "Revert the image to snapshot NAME (an ID or a name); the current state is lost" };
        var delete = new Option<string?>("-d") { Description = "Delete the (first) snapshot named NAME" };
        var cmd = new Command("snapshot", """
            List, create, apply or delete internal snapshots of a qcow2 image, as qemu-img snapshot.

            Examples:
              urldisk snapshot -c before-upgrade vm.qcow2
              urldisk snapshot -l https://host/images/vm.qcow2
              urldisk snapshot -a before-upgrade vm.qcow2 && urldisk snapshot -d before-upgrade vm.qcow2
            """)
        { filename, format, imageOpts, list, create, apply, delete };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string? createName = r.GetValue(create), applyName = r.GetValue(apply), deleteName = r.GetValue(delete);
            int modes = (r.GetValue(list) ? 1 : 0) + (createName is null ? 0 : 1) + (applyName is null ? 0 : 1) + (deleteName is null ? 0 : 1);
            if (modes > 1)
            {
                throw new OptionException("snapshot: Cannot mix '-l', '-a', '-c', '-d'; give one of them");
            }

            string spec = r.GetValue(filename)!;
            if (createName is null && applyName is null && deleteName is null)
            {
                await using var image = await CliCommon.OpenAsync(spec, r.GetValue(imageOpts), r.GetValue(format), new OpenContext { NoBacking = true }, ct).ConfigureAwait(false);
                if (image is Qcow2Image q && q.Snapshots.Count > 0)
                {
                    Console.Out.Write(FormatList(q.Snapshots));
                }

                return 0;
            }

            string action = createName is not null ? "create" : applyName is not null ? "apply" : "delete";
            string name = createName ?? applyName ?? deleteName!;
            var tree = CliCommon.ParseSpec(spec, r.GetValue(imageOpts));
            Task<Sources.File.FileSource> OpenFileAsync() => LocalQcow2File.OpenAsync(
                tree,
                r.GetValue(format),
                $"snapshot: '{InfoVerb.DisplayFilename(spec)}' is not a local file; -c, -a and -d change the image and need a local qcow2 file (-l works on remote images)",
                found => $"Could not {action} snapshot '{name}': this image format ({found}) does not support internal snapshots; only qcow2 does",
                ct);

            long? takenAtSize = null;
            await using (var source = await OpenFileAsync().ConfigureAwait(false))
            {
                var editor = await Qcow2SnapshotEditor.OpenAsync(source, ct).ConfigureAwait(false);
                if (createName is not null)
                {
                    await editor.CreateAsync(createName, DateTimeOffset.UtcNow, ct).ConfigureAwait(false);
                }
                else if (applyName is not null)
                {
                    var entry = editor.FindByIdOrName(applyName) ?? throw new UrlDiskException($"Could not apply snapshot '{applyName}': snapshot not found");
                    if (entry.DiskSize is { } size && (long)size != editor.VirtualSize)
                    {
                        takenAtSize = (long)size;
                    }
                    else
                    {
                        await editor.ApplyAsync(entry, ct).ConfigureAwait(false);
                    }
                }
                else if (!await editor.DeleteAsync(deleteName!, ct).ConfigureAwait(false))
                {
                    throw new UrlDiskException($"Could not delete snapshot '{deleteName}': snapshot not found");
                }
            }

            if (takenAtSize is { } virtualSize)
            {
                // A snapshot taken at another virtual size: as qemu-img, the image takes that size first (the
                // current state grows, or is cut), then the snapshot's tables replace the current ones.
                string path = Operations.LocalImage.RequirePath(tree, spec, "snapshot", "-a changes the image and needs a local qcow2 file");
                await Operations.ImageResizer.ResizeAsync(tree, path, "qcow2", _ => virtualSize, shrink: true, "off", ct).ConfigureAwait(false);
                await using var source = await OpenFileAsync().ConfigureAwait(false);
                var editor = await Qcow2SnapshotEditor.OpenAsync(source, ct).ConfigureAwait(false);
                await editor.ApplyAsync(editor.FindByIdOrName(applyName!)!, ct).ConfigureAwait(false);
            }

            return 0;
        }));
        return cmd;
    }

    /// <summary>qemu-img's table: <c>Snapshot list:</c>, a header line, a line per snapshot (dates in local time).</summary>
    internal static string FormatList(IReadOnlyList<SnapshotEntry> snapshots)
    {
        var text = new System.Text.StringBuilder("Snapshot list:\n");
        text.Append("ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT\n");
        foreach (var s in snapshots)
        {
            ulong vmState = s.ExtraData.Length >= 8 ? BinaryPrimitives.ReadUInt64BigEndian(s.ExtraData) : s.VmStateSize;
            string date = DateTimeOffset.FromUnixTimeSeconds(s.DateSeconds).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
            ulong secs = s.VmClockNanoseconds / 1_000_000_000;
            string clock = string.Create(CultureInfo.InvariantCulture, $"{secs / 3600:00}:{secs / 60 % 60:00}:{secs % 60:00}.{s.VmClockNanoseconds / 1_000_000 % 1000:000}");
            ulong icount = s.ExtraData.Length >= 24 ? BinaryPrimitives.ReadUInt64BigEndian(s.ExtraData.AsSpan(16)) : ulong.MaxValue;
            text.Append(Row(s.Id, s.Name, SizeToString(vmState), date, clock, icount == ulong.MaxValue ? "" : icount.ToString(CultureInfo.InvariantCulture)));
        }

        return text.ToString();
    }

    /// <summary>
    /// One snapshot's line in qemu-img 7.2's widths (the tag takes 16 bytes, then a space and the size in 8, so a
    /// longer tag pushes the rest right); widths count bytes of UTF-8, as C's printf does.
    /// </summary>
    private static string Row(string id, string tag, string size, string date, string clock, string icount)
        => $"{Pad(id, 9)} {Pad(tag, 16)} {size,8}{date,20}{clock,13}{icount,11}\n";

    private static string Pad(string text, int bytes)
        => text + new string(' ', Math.Max(0, bytes - System.Text.Encoding.UTF8.GetByteCount(text)));

    /// <summary>qemu's size_to_str: three significant digits in the largest binary unit the value reaches 1000 of.</summary>
    internal static string SizeToString(ulong value)
    {
        string[] suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        int unit = 0;
        while (unit < suffixes.Length - 1 && value * 1.024 >= Math.Pow(2, 10 * (unit + 1)))
        {
            unit++;
        }

        double scaled = value / Math.Pow(2, 10 * unit);
        return scaled.ToString("G3", CultureInfo.InvariantCulture).Replace("E+0", "e+0", StringComparison.Ordinal) + " " + suffixes[unit] + "B";
    }
}
