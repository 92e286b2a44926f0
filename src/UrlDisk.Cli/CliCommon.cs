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

    public static Option<string?> Format() => new("--format", "-f") { Description = "Image format of the source (raw, qcow2); probed when absent" };

    public static Option<bool> ImageOpts() => new("--image-opts") { Description = "Treat the filename as key=value options (driver=raw,file.driver=http,file.url=…; ,, is a literal comma)" };

    public static Option<string> Output() => new("--output") { Description = "Output format: human or json", DefaultValueFactory = _ => "human" };

    /// <summary>Parses a filename argument in the form the flags say.</summary>
    public static OptionTree ParseSpec(string spec, bool imageOpts)
        => imageOpts ? SpecParser.ParseKeyValue(spec) : SpecParser.ParseFilename(spec);

    public static ValueTask<IBlockDevice> OpenAsync(string spec, bool imageOpts, string? format, OpenContext? context, CancellationToken ct)
        => ImageOpener.OpenAsync(ParseSpec(spec, imageOpts), format, context, ct);

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
        catch (Exception e) when (e is UrlDiskException or IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException or InvalidDataException or TimeoutException or System.Net.Http.HttpRequestException)
        {
            Console.Error.WriteLine("urldisk: " + Redact.Spec(OneLine(e.Message)));
            code = 1;
        }

        stats?.Print(Console.Error);
        return code;
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();
}
