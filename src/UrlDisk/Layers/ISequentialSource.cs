namespace UrlDisk.Layers;

/// <summary>
/// A source that can only send the whole file from byte 0, in order (TFTP; HTTP servers without byte ranges).
/// <see cref="FillCache"/> turns one into a random-access block device.
/// </summary>
internal interface ISequentialSource : IAsyncDisposable
{
    /// <summary>Driver name shown in <c>info</c> ("tftp", "http").</summary>
    string Protocol { get; }

    /// <summary>Where the data comes from, credentials removed.</summary>
    string DisplayName { get; }

    /// <summary>The size when the server announced it before the data (tsize, Content-Length); null when unknown.</summary>
    long? Length { get; }

    /// <summary>What announced <see cref="Length"/>, for messages ("tsize", "SIZE", "Content-Length").</summary>
    string SizeName => "size";

    /// <summary>Facts for <c>info</c> (protocol, url, negotiated options …).</summary>
    IReadOnlyDictionary<string, object?> Details { get; }

    /// <summary>
    /// Sends the whole file to <paramref name="sink"/>, chunk after chunk in order from byte 0, and returns at its end.
    /// The sink may keep no reference to a chunk after it returns. Called again after a failure, it starts a new
    /// transfer from byte 0. Failures worth trying again are <see cref="SourceException"/> with IsTransient.
    /// </summary>
    Task CopyToAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken cancellationToken);
}
