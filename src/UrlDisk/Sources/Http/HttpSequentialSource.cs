using UrlDisk.Layers;

namespace UrlDisk.Sources.Http;

/// <summary>An HTTP file on a server without byte ranges, read whole and in order by a <see cref="FillCache"/>.</summary>
internal sealed class HttpSequentialSource(HttpSource source) : ISequentialSource
{
    public string Protocol => source.Info.Driver;

    public string DisplayName => source.Info.DisplayName ?? source.Info.Driver;

    public long? Length => source.KnownLength;

    public IReadOnlyDictionary<string, object?> Details => source.Info.Details;

    public Task CopyToAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken cancellationToken)
        => source.CopyWholeAsync(sink, cancellationToken);

    public ValueTask DisposeAsync() => source.DisposeAsync();
}
