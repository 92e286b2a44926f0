using System.Globalization;

namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>One request as nginx logged it (see the <c>urldisk</c> log_format in <see cref="NginxServer"/>).</summary>
public sealed record AccessLogEntry(
    string Method,
    string Uri,
    int Status,
    string? Range,
    long BytesSent,
    int Port,
    string? User,
    long Connection,
    string? IfRange,
    string? UserAgent)
{
    internal const string LogFormat = "$request_method\\t$request_uri\\t$status\\t$http_range\\t$body_bytes_sent\\t$server_port\\t$remote_user\\t$connection\\t$http_if_range\\t$http_user_agent";

    /// <summary>Parses one line of the log; nginx writes "-" for an empty variable.</summary>
    public static AccessLogEntry Parse(string line)
    {
        var f = line.Split('\t');
        if (f.Length != 10)
        {
            throw new FormatException($"unexpected nginx access log line: {line}");
        }

        static string? Opt(string s) => s == "-" || s.Length == 0 ? null : s;
        return new AccessLogEntry(
            f[0],
            f[1],
            int.Parse(f[2], CultureInfo.InvariantCulture),
            Opt(f[3]),
            long.Parse(f[4], CultureInfo.InvariantCulture),
            int.Parse(f[5], CultureInfo.InvariantCulture),
            Opt(f[6]),
            long.Parse(f[7], CultureInfo.InvariantCulture),
            Opt(f[8]),
            Opt(f[9]));
    }

    /// <summary>The first and last byte of a single <c>bytes=a-b</c> range, or null.</summary>
    public (long First, long Last)? ParsedRange
    {
        get
        {
            if (Range is null || !Range.StartsWith("bytes=", StringComparison.Ordinal))
            {
                return null;
            }

            var parts = Range[6..].Split('-');
            if (parts.Length == 2 && long.TryParse(parts[0], CultureInfo.InvariantCulture, out long a) && long.TryParse(parts[1], CultureInfo.InvariantCulture, out long b))
            {
                return (a, b);
            }

            return null;
        }
    }
}
