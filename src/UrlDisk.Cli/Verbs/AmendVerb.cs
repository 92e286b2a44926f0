using System.CommandLine;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk amend -o compat=0.10|1.1,lazy_refcounts=on|off FILE</c>: change a qcow2 file's version and lazy refcounts, as qemu-img amend.</summary>
internal static class AmendVerb
{
    private const string Allowed = "compat (0.10 or 1.1), lazy_refcounts (on or off)";

    public static Command Create()
    {
        var filename = new Argument<string>("filename") { Description = "Path of the local qcow2 image" };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var options = new Option<string[]>("-o") { Description = "Options to change: compat=0.10|1.1, lazy_refcounts=on|off; -o help lists them" };
        var progress = new Option<bool>("--progress", "-p") { Description = "Accepted for qemu-img compatibility (amend of these options is quick)" };
        var cache = CacheMode.Output("Cache mode, accepted and checked as qemu-img's (the edits are flushed to disk in every mode)");
        var force = new Option<bool>("--force") { Description = "Accepted for qemu-img compatibility" };
        var cmd = new Command("amend", """
            Change options of an existing qcow2 image, as qemu-img amend: its version (compat=0.10 is qcow2 v2, 1.1 is v3)
            and lazy refcounts. Going down to 0.10 needs 16-bit refcounts, no extended L2 or zstd, and no zero clusters over
            a backing file.

            Examples:
              urldisk amend -o compat=0.10 old-qemu.qcow2
              urldisk amend -o compat=1.1,lazy_refcounts=on vm.qcow2
              urldisk amend -o help vm.qcow2
            """)
        { filename, format, imageOpts, options, progress, cache, force };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            CacheMode.FlushesOutput(r.GetValue(cache));
            string text = string.Join(',', r.GetValue(options) ?? []);
            if (text.Length == 0)
            {
                throw new OptionException($"amend: give the options to change with -o ({Allowed})");
            }

            if (text.Split(',').Any(o => o is "help" or "?"))
            {
                Console.Out.Write("""
                    Amend options for 'qcow2':
                      compat=<str>           - Compatibility level (v2 [0.10] or v3 [1.1])
                      lazy_refcounts=<bool (on/off)> - Postpone refcount updates

                    """);
                return 0;
            }

            int? version = null;
            bool? lazy = null;
            foreach (string pair in text.Split(','))
            {
                int eq = pair.IndexOf('=', StringComparison.Ordinal);
                string key = eq < 0 ? pair : pair[..eq], value = eq < 0 ? "" : pair[(eq + 1)..];
                switch (key)
                {
                    case "compat":
                        version = value switch
                        {
                            "0.10" or "v2" => 2,
                            "1.1" or "v3" => 3,
                            _ => throw new OptionException($"amend: compat='{value}' is not allowed; use 0.10 (v2) or 1.1 (v3)"),
                        };
                        break;
                    case "lazy_refcounts":
                        lazy = value switch
                        {
                            "on" or "true" => true,
                            "off" or "false" => false,
                            _ => throw new OptionException($"amend: lazy_refcounts='{value}' is not allowed; use on or off"),
                        };
                        break;
                    default:
                        throw new OptionException(Qcow2Amender.Unsupported.TryGetValue(key, out string? instead)
                            ? $"amend: option '{key}' is not supported here ({instead}); allowed: {Allowed}"
                            : $"amend: Invalid parameter '{key}'; allowed: {Allowed}");
                }
            }

            string spec = r.GetValue(filename)!;
            var tree = CliCommon.ParseSpec(spec, r.GetValue(imageOpts));
            await using var source = await LocalQcow2File.OpenAsync(
                tree,
                r.GetValue(format),
                $"amend: '{InfoVerb.DisplayFilename(spec)}' is not a local file; amend changes the image and needs a local qcow2 file",
                found => $"amend: Format driver '{found}' does not support option amendment; only qcow2 does",
                ct).ConfigureAwait(false);

            await Qcow2Amender.AmendAsync(source, version, lazy, ct).ConfigureAwait(false);
            return 0;
        }));
        return cmd;
    }
}
