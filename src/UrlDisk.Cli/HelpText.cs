using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Text;
using System.Text.RegularExpressions;

namespace UrlDisk.Cli;

/// <summary>
/// The help System.CommandLine prints, made urldisk's: the usage line names <c>urldisk</c> (not the binary's
/// assembly name), a default the description already states is not repeated as <c>[default: …]</c>, and each
/// verb ends with a few examples.
/// </summary>
internal static partial class HelpText
{
    /// <summary>Examples by verb (the root's under ""). A verb added later puts its own lines here.</summary>
    private static readonly Dictionary<string, string[]> Examples = new(StringComparer.Ordinal)
    {
        [""] =
        [
            "urldisk demo",
            "urldisk info https://host/images/disk.qcow2",
            "urldisk convert -p -O raw https://host/images/disk.qcow2 disk.raw",
        ],
        ["info"] =
        [
            "urldisk info https://host/images/disk.qcow2",
            "urldisk info --output json --backing-chain vm.qcow2",
            "urldisk info --image-opts 'driver=raw,file.driver=http,file.url=http://host/disk.img'",
        ],
        ["convert"] =
        [
            "urldisk convert -p -O raw https://host/images/disk.qcow2 disk.raw",
            "urldisk convert -O qcow2 -c -o compression_type=zstd disk.raw disk.qcow2",
            "urldisk convert -O qcow2 -B base.qcow2 -F qcow2 https://host/new.qcow2 delta.qcow2",
        ],
        ["create"] =
        [
            "urldisk create -f qcow2 disk.qcow2 10G",
            "urldisk create -f qcow2 -F qcow2 -b https://host/cloud.qcow2 vm.qcow2",
            "urldisk create -f raw -o preallocation=falloc disk.raw 1G",
        ],
        ["check"] =
        [
            "urldisk check vm.qcow2",
            "urldisk check --output json https://host/images/disk.qcow2",
        ],
        ["compare"] =
        [
            "urldisk compare disk.raw https://host/images/disk.qcow2",
            "urldisk compare -s vm.qcow2 copy.qcow2",
        ],
        ["map"] =
        [
            "urldisk map https://host/images/disk.qcow2",
            "urldisk map --output json vm.qcow2",
        ],
        ["serve"] =
        [
            "urldisk serve --socket /tmp/disk.sock https://host/images/disk.iso",
            "urldisk serve --copy-on-read --port 10809 vm.qcow2",
            "urldisk serve -r -x disk --bind 127.0.0.1 https://host/images/disk.qcow2",
        ],
        ["mount"] =
        [
            "urldisk mount https://host/cloud.qcow2 /tmp/disk.raw",
            "urldisk mount --daemon --copy-on-read vm.qcow2 /tmp/m",
        ],
        ["unmount"] =
        [
            "urldisk unmount /tmp/disk.raw",
            "urldisk unmount /tmp/m",
        ],
        ["demo"] =
        [
            "urldisk demo",
            "urldisk demo --keep /tmp/urldisk-demo",
        ],
    };

    /// <summary>Puts urldisk's help action on every <c>--help</c> (the root's help option is recursive).</summary>
    public static void Configure(RootCommand root)
    {
        foreach (var help in root.Options.OfType<HelpOption>())
        {
            if (help.Action is HelpAction inner)
            {
                inner.MaxWidth = int.MaxValue; // one line per row, so rows can be edited below
                help.Action = new Action(inner);
            }
        }
    }

    /// <summary>System.CommandLine's help text rewritten (pure; the tests read it).</summary>
    internal static string Rewrite(string help, Command command)
    {
        var text = new StringBuilder();
        bool usage = false;
        foreach (string line in help.ReplaceLineEndings("\n").Split('\n'))
        {
            string l = line;
            if (usage && l.StartsWith("  ", StringComparison.Ordinal) && l.Length > 2)
            {
                string name = RootCommand.ExecutableName;
                if (l.AsSpan(2).StartsWith(name, StringComparison.Ordinal))
                {
                    l = "  urldisk" + l[(2 + name.Length)..];
                }
            }

            usage = l == "Usage:" || (usage && l.Length > 0);
            text.Append(DefaultOnce(l)).Append('\n');
        }

        string result = text.ToString().TrimEnd('\n') + "\n";
        string verb = command is RootCommand ? "" : command.Name;
        if (Examples.TryGetValue(verb, out var examples))
        {
            result += "\nExamples:\n" + string.Concat(examples.Select(e => $"  {e}\n"));
        }

        return result;
    }

    /// <summary>Drops <c>[default: …]</c> from a row whose description already names the default.</summary>
    private static string DefaultOnce(string line)
    {
        var m = DefaultSuffix().Match(line);
        return m.Success && line[..m.Index].Contains("default", StringComparison.OrdinalIgnoreCase) ? line.Remove(m.Index, m.Length) : line;
    }

    [GeneratedRegex(@" \[default: [^\]]*\]")]
    private static partial Regex DefaultSuffix();

    private sealed class Action(HelpAction inner) : SynchronousCommandLineAction
    {
        /// <summary>As the help action it wraps: <c>info --help</c> is help, not a missing FILENAME.</summary>
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            var config = parseResult.InvocationConfiguration;
            var output = config.Output;
            using var captured = new StringWriter();
            config.Output = captured;
            try
            {
                inner.Invoke(parseResult);
            }
            finally
            {
                config.Output = output;
            }

            output.Write(Rewrite(captured.ToString(), parseResult.CommandResult.Command));
            return 0;
        }
    }
}
