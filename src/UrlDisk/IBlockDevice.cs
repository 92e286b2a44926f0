namespace UrlDisk;

/// <summary>
/// A device with a length that answers positional, concurrent, asynchronous I/O.
/// Sources produce one from a URL, layers and formats wrap one and are one, front ends consume one.
/// Every member is safe to call concurrently.
/// </summary>
public interface IBlockDevice : IAsyncDisposable
{
    /// <summary>Size in bytes.</summary>
    long Length { get; }

    /// <summary>What this device can do and what it learned about itself.</summary>
    BlockDeviceInfo Info { get; }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>. Reads past <see cref="Length"/> are an error.</summary>
    ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>; a read-only device throws <see cref="ReadOnlyDeviceException"/>.</summary>
    ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, WriteOptions options = default, CancellationToken cancellationToken = default);

    /// <summary>Makes <c>[offset, offset + length)</c> read as zeros, by a hole where allowed (<see cref="WriteOptions.NoHole"/> forbids it).</summary>
    ValueTask WriteZeroesAsync(long offset, long length, WriteOptions options = default, CancellationToken cancellationToken = default);

    /// <summary>A hint that <c>[offset, offset + length)</c> is no longer needed; its contents become unspecified.</summary>
    ValueTask TrimAsync(long offset, long length, CancellationToken cancellationToken = default);

    /// <summary>Makes every completed write durable.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken = default);

    /// <summary>Allocation status of <c>[offset, offset + length)</c>, as contiguous extents in order; may end early.</summary>
    ValueTask<IReadOnlyList<Extent>> GetExtentsAsync(long offset, long length, CancellationToken cancellationToken = default);

    /// <summary>A hint that the range will be read soon (NBD CACHE).</summary>
    ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken = default);
}
