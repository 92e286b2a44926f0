using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using UrlDisk.Diagnostics;

namespace UrlDisk.Cli;

/// <summary>Listens to the <c>UrlDisk</c> meter and prints totals for <c>--stats</c>.</summary>
internal sealed class StatsCollector : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _totals = new();
    private readonly DateTime _start = DateTime.UtcNow;

    public StatsCollector()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == UrlDiskMetrics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => _totals.AddOrUpdate(instrument.Name, value, (_, old) => old + value));
        _listener.Start();
    }

    public long Get(string name) => _totals.TryGetValue(name, out long v) ? v : 0;

    public void Print(TextWriter w)
    {
        double seconds = (DateTime.UtcNow - _start).TotalSeconds;
        w.WriteLine($"stats: requests {Get("urldisk.requests")}, bytes fetched {Get("urldisk.bytes_fetched")}, cache hits {Get("urldisk.cache_hits")}, cache misses {Get("urldisk.cache_misses")}, joined in-flight {Get("urldisk.cache_joins")}, retries {Get("urldisk.retries")}, redirects {Get("urldisk.redirects")}, elapsed {seconds:0.00} s");
    }

    public void Dispose() => _listener.Dispose();
}
