namespace UrlDisk;

/// <summary>
/// Base for devices: read-only defaults, bounds checking, and the whole device as one data extent.
/// </summary>
public abstract class BlockDevice : IBlockDevice
{
    private int _disposed;

    /// <inheritdoc/>
    public abstract long Length { get; }
    /// <inheritdoc/>
    public abstract BlockDeviceInfo Info { get; }

    /// <inheritdoc/>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, buffer.Length);
        return buffer.Length == 0 ? ValueTask.CompletedTask : ReadCoreAsync(offset, buffer, cancellationToken);
    }

    /// <inheritdoc/>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, WriteOptions options = default, CancellationToken cancellationToken = default)
    {
        if (!Info.CanWrite)
        {
            throw new ReadOnlyDeviceException(Info.Driver);
        }

        CheckRange(offset, data.Length);
        return data.Length == 0 ? ValueTask.CompletedTask : WriteCoreAsync(offset, data, options, cancellationToken);
    }

    /// <inheritdoc/>
    public ValueTask WriteZeroesAsync(long offset, long length, WriteOptions options = default, CancellationToken cancellationToken = default)
    {
        if (!Info.CanWrite)
        {
            throw new ReadOnlyDeviceException(Info.Driver);
        }

        CheckRange(offset, length);
        return length == 0 ? ValueTask.CompletedTask : WriteZeroesCoreAsync(offset, length, options, cancellationToken);
    }

    /// <inheritdoc/>
    public ValueTask TrimAsync(long offset, long length, CancellationToken cancellationToken = default)
    {
        if (!Info.CanWrite)
        {
            throw new ReadOnlyDeviceException(Info.Driver);
        }

        CheckRange(offset, length);
        return length == 0 || !Info.CanTrim ? ValueTask.CompletedTask : TrimCoreAsync(offset, length, cancellationToken);
    }

    /// <inheritdoc/>
    public virtual ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<Extent>> GetExtentsAsync(long offset, long length, CancellationToken cancellationToken = default)
    {
        CheckRange(offset, length);
        return length == 0 ? new([]) : GetExtentsCoreAsync(offset, length, cancellationToken);
    }

    /// <inheritdoc/>
    public virtual ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <summary>Reads a range already checked to lie inside the device and to be non-empty.</summary>
    protected abstract ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Writes a checked, non-empty range; the default refuses (a read-only device).</summary>
    protected virtual ValueTask WriteCoreAsync(long offset, ReadOnlyMemory<byte> data, WriteOptions options, CancellationToken cancellationToken)
        => throw new ReadOnlyDeviceException(Info.Driver);

    /// <summary>Default: write zero buffers.</summary>
    protected virtual async ValueTask WriteZeroesCoreAsync(long offset, long length, WriteOptions options, CancellationToken cancellationToken)
    {
        if ((options & WriteOptions.FastZero) != 0)
        {
            throw new NotSupportedException($"{Info.Driver}: fast zeroing is not supported");
        }

        var zeros = new byte[(int)Math.Min(length, 1 << 20)];
        while (length > 0)
        {
            int n = (int)Math.Min(length, zeros.Length);
            await WriteCoreAsync(offset, zeros.AsMemory(0, n), options, cancellationToken).ConfigureAwait(false);
            offset += n;
            length -= n;
        }
    }

    /// <summary>Discards a checked, non-empty range on a device that can trim; the default does nothing.</summary>
    protected virtual ValueTask TrimCoreAsync(long offset, long length, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Allocation status of a checked, non-empty range; the default reports one data extent.</summary>
    protected virtual ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
        => new([new Extent(offset, length, ExtentFlags.Data)]);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> unless <c>[offset, offset + length)</c> lies inside the device.</summary>
    protected void CheckRange(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > Length || length > Length - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"Range {offset}+{length} is outside the device (size {Length}).");
        }
    }

    /// <summary>Releases the device once (later calls do nothing); see <see cref="DisposeCoreAsync"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await DisposeCoreAsync().ConfigureAwait(false);
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>Releases what the device holds; called once, by <see cref="DisposeAsync"/>.</summary>
    protected virtual ValueTask DisposeCoreAsync() => ValueTask.CompletedTask;
}
