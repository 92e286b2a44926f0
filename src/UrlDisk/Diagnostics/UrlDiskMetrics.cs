using System.Diagnostics.Metrics;

namespace UrlDisk.Diagnostics;

/// <summary>
/// Counters in the <c>UrlDisk</c> meter, visible to dotnet-counters and OpenTelemetry; the CLI's <c>--stats</c> prints them.
/// Every instrument is tagged with the source's protocol.
/// </summary>
public static class UrlDiskMetrics
{
    /// <summary>The name of the meter: listen to it with <c>dotnet-counters monitor --counters UrlDisk</c>, a <see cref="MeterListener"/> or OpenTelemetry.</summary>
    public const string MeterName = "UrlDisk";

    internal static readonly Meter Meter = new(MeterName, "1.0");

    /// <summary>Requests sent to servers (HEAD, GET, RETR, RRQ …).</summary>
    internal static readonly Counter<long> Requests = Meter.CreateCounter<long>("urldisk.requests", "{request}");

    /// <summary>Bytes received from servers.</summary>
    internal static readonly Counter<long> BytesFetched = Meter.CreateCounter<long>("urldisk.bytes_fetched", "By");

    /// <summary>Bytes returned to readers of a source.</summary>
    internal static readonly Counter<long> BytesRead = Meter.CreateCounter<long>("urldisk.bytes_read", "By");

    /// <summary>Reads answered from a cache without a request.</summary>
    internal static readonly Counter<long> CacheHits = Meter.CreateCounter<long>("urldisk.cache_hits", "{read}");

    /// <summary>Reads that needed a request.</summary>
    internal static readonly Counter<long> CacheMisses = Meter.CreateCounter<long>("urldisk.cache_misses", "{read}");

    /// <summary>Reads that joined a transfer already in flight instead of asking again.</summary>
    internal static readonly Counter<long> CacheJoins = Meter.CreateCounter<long>("urldisk.cache_joins", "{read}");

    /// <summary>Requests retried after a transient failure.</summary>
    internal static readonly Counter<long> Retries = Meter.CreateCounter<long>("urldisk.retries", "{retry}");

    /// <summary>Redirects followed.</summary>
    internal static readonly Counter<long> Redirects = Meter.CreateCounter<long>("urldisk.redirects", "{redirect}");

    /// <summary>Transfers in flight now.</summary>
    internal static readonly UpDownCounter<long> InFlight = Meter.CreateUpDownCounter<long>("urldisk.in_flight", "{request}");
}
