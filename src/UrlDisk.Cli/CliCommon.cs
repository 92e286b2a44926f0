using System.CommandLine;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Cli;

/// <summary>Options and behaviour shared by every verb.</summary>
internal static class CliCommon
{
    public static readonly Option<bool> Stats = new("--stats")
    {
        Description = "Print requests, bytes fetched, cache hits and retries when done (to stderr)",
        Recursive = true,
    };

    /// <summary>qemu-img's <c>-U</c>: open images without taking locks. UrlDisk takes no image locks, so it changes nothing.</summary>
    public static readonly Option<bool> ForceShare = new("--force-share", "-U")
    {
        Description = "Accepted for qemu-img compatibility: urldisk takes no image locks, so sharing is always allowed",
        Recursive = true,
    };

    /// <summary>qemu-img's <c>-q</c>: no progress and no "Formatting …" line.</summary>
    public static readonly Option<bool> Quiet = new("--quiet", "-q")
    {
        Description = "Quiet: no progress output and no 'Formatting' line (as qemu-img -q)",
        Recursive = true,
    };

    /// <summary>The disk cache's directory for every remote source that names none (<c>cache-dir=</c> overrides it); also <c>URLDISK_CACHE_DIR</c>.</summary>
    public static readonly Option<string?> CacheDir = new("--cache-dir")
    {
        Description = "Keep blocks read from http/https/ftp/ftps URLs in DIR for later runs and other processes (also URLDISK_CACHE_DIR; cache-dir=none turns it off for one source)",
        HelpName = "DIR",
        Recursive = true,
    };

    public static readonly Option<bool> Verbose = new("--verbose", "-v")
    {
        Description = "Log requests, retries, redirects, fallbacks and cache decisions to stderr (also URLDISK_LOG=debug)",
        Recursive = true,
    };

    public static Option<string?> Format() => new("--format", "-f") { Description = "Image format of the source (raw, qcow2, vmdk, vdi, vpc, vhdx); probed when absent (xz, gzip and zstd files are decompressed first)" };

    public static Option<bool> ImageOpts() => new("--image-opts") { Description = "Treat the filename as key=value options (driver=raw,file.driver=http,file.url=…; ,, is a literal comma)" };

    public static Option<string> Output() => new("--output") { Description = "Output format: human or json", DefaultValueFactory = _ => "human" };

    /// <summary>Parses a filename argument in the form the flags say.</summary>
    public static OptionTree ParseSpec(string spec, bool imageOpts)
        => imageOpts ? SpecParser.ParseKeyValue(spec) : SpecParser.ParseFilename(spec);

    public static ValueTask<IBlockDevice> OpenAsync(string spec, bool imageOpts, string? format, OpenContext? context, CancellationToken ct)
        => ImageOpener.OpenAsync(ParseSpec(spec, imageOpts), format, context, ct);

    /// <summary>
    /// A whole-number flag whose bad values are refused while parsing, naming the flag, the value and the range
    /// (System.CommandLine's own message names a .NET type instead).
    /// </summary>
    public static Option<int> WholeNumber(string name, string alias, string description, int defaultValue, int min, int max, string? allowed = null)
        => new(name, alias)
        {
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = r =>
            {
                string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
                if (int.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out int n) && n >= min && n <= max)
                {
                    return n;
                }

                r.AddError($"{alias}/{name}: '{text}' is not allowed; use {allowed ?? $"a whole number from {min} to {max}"}");
                return defaultValue;
            },
        };

    /// <summary>A path argument or flag: an empty one is an error that names it, not a .NET "empty string" message.</summary>
    public static string RequirePath(string? value, string what)
        => string.IsNullOrEmpty(value) ? throw new OptionException($"{what}: the path is empty; give a file name") : value;

    /// <summary>
    /// Parse errors (unknown flags, bad numbers, missing arguments) as one line on stderr and exit 1, like every
    /// other error; the help is one <c>--help</c> away.
    /// </summary>
    public static int ReportParseErrors(ParseResult result)
    {
        string verb = result.CommandResult.Command is RootCommand ? "" : " " + result.CommandResult.Command.Name;
        string errors = UnknownFlag(result) is { } flag
            ? $"unknown option '{flag}'"
            : string.Join("; ", result.Errors.Select(e => OneLine(e.Message).TrimEnd('.')).Distinct());
        Console.Error.WriteLine($"urldisk: {Redact.Spec(errors)} (see urldisk{verb} --help)");

        // compare's exit 1 means "the images differ", so a usage error there is 2, as in qemu-img.
        return result.CommandResult.Command.Name == "compare" ? 2 : 1;
    }

    /// <summary>
    /// The first word that looks like a flag but matched no option. The parser takes such a word as the next
    /// argument and then complains about the word after it; users need to hear about the flag.
    /// </summary>
    private static string? UnknownFlag(ParseResult result)
    {
        foreach (var token in result.Tokens)
        {
            if (token.Type == System.CommandLine.Parsing.TokenType.DoubleDash)
            {
                return null;
            }

            string v = token.Value;
            if (token.Type == System.CommandLine.Parsing.TokenType.Argument && v.Length > 1 && v[0] == '-'
                && !double.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _)
                && result.UnmatchedTokens.Count + result.Errors.Count > 0
                && !IsOptionValue(result, token))
            {
                return v;
            }
        }

        return null;
    }

    /// <summary>Whether the token is the value of an option (<c>-o -x</c> is a value, not a flag).</summary>
    private static bool IsOptionValue(ParseResult result, System.CommandLine.Parsing.Token token)
    {
        for (var r = result.CommandResult; r is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
        {
            foreach (var child in r.Children)
            {
                if (child is System.CommandLine.Parsing.OptionResult o && o.Tokens.Contains(token))
                {
                    return true;
                }
            }
        }

        return false;
    }

    public static string CheckOutputFormat(string? output) => output switch
    {
        "human" or "json" => output,
        _ => throw new OptionException($"--output: '{output}' is not allowed; use human or json"),
    };

    /// <summary>
    /// Runs a verb: errors become one line on stderr (credentials removed) and exit code 1,
    /// Ctrl+C cancels, and <c>--stats</c> prints the counters at the end.
    /// </summary>
    public static async Task<int> RunAsync(ParseResult result, CancellationToken ct, Func<CancellationToken, Task<int>> body)
    {
        using var stats = result.GetValue(Stats) ? new StatsCollector() : null;
        StderrLogger.Configure(result.GetValue(Verbose), Environment.GetEnvironmentVariable("URLDISK_LOG"));
        UrlDisk.Layers.DiskCache.DiskCacheSettings.DefaultDirectory = CacheDirectory(result);
        int code;
        try
        {
            code = await body(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Console.Error.WriteLine("urldisk: cancelled");
            code = 130;
        }
        catch (Exception e) when (e is UrlDiskException or IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException or InvalidDataException or TimeoutException or System.Net.Http.HttpRequestException or System.Net.Sockets.SocketException)
        {
            Console.Error.WriteLine("urldisk: " + Redact.Spec(OneLine(e.Message)));
            code = 1;
        }

        stats?.Print(Console.Error);
        return code;
    }

    /// <summary><c>--cache-dir</c>, else <c>URLDISK_CACHE_DIR</c>, else null (no disk cache).</summary>
    public static string? CacheDirectory(ParseResult result)
        => result.GetValue(CacheDir) is { Length: > 0 } dir ? dir : Environment.GetEnvironmentVariable("URLDISK_CACHE_DIR") is { Length: > 0 } env ? env : null;

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}
