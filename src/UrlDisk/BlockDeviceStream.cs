namespace UrlDisk;

/// <summary>
/// A seekable <see cref="Stream"/> over a block device, for .NET code that wants a Stream.
/// Reads past the end return 0; writes past the end are an error (block devices do not grow).
/// Each call maps to positional I/O, so several streams over one device may be used at once.
/// </summary>
public sealed class BlockDeviceStream : Stream
{
    private readonly IBlockDevice _device;
    private readonly bool _ownsDevice;
    private long _position;

    /// <summary>A stream at position 0 over <paramref name="device"/>; with <paramref name="ownsDevice"/>, disposing the stream disposes the device.</summary>
    public BlockDeviceStream(IBlockDevice device, bool ownsDevice = false)
    {
        _device = device;
        _ownsDevice = ownsDevice;
    }

    /// <inheritdoc/>
    public override bool CanRead => true;
    /// <inheritdoc/>
    public override bool CanSeek => true;
    /// <inheritdoc/>
    public override bool CanWrite => _device.Info.CanWrite;
    /// <inheritdoc/>
    public override long Length => _device.Length;

    /// <inheritdoc/>
    public override long Position
    {
        get => _position;
        set => _position = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), "Position must not be negative.");
    }

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => _position + offset,
        SeekOrigin.End => _device.Length + offset,
        _ => throw new ArgumentOutOfRangeException(nameof(origin)),
    };

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException("A block device's length is fixed.");

    /// <inheritdoc/>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        long available = _device.Length - _position;
        if (available <= 0 || buffer.Length == 0)
        {
            return 0;
        }

        int n = (int)Math.Min(buffer.Length, available);
        await _device.ReadAsync(_position, buffer[..n], cancellationToken).ConfigureAwait(false);
        _position += n;
        return n;
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // The synchronous Stream API has no async path to lean on: callers that choose it accept blocking.
    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        byte[] tmp = new byte[buffer.Length];
        int n = Read(tmp, 0, tmp.Length);
        tmp.AsSpan(0, n).CopyTo(buffer);
        return n;
    }

    /// <inheritdoc/>
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_position + buffer.Length > _device.Length)
        {
            throw new IOException($"Write of {buffer.Length} bytes at {_position} is past the end of the device ({_device.Length} bytes).");
        }

        await _device.WriteAsync(_position, buffer, WriteOptions.None, cancellationToken).ConfigureAwait(false);
        _position += buffer.Length;
    }

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    public override Task FlushAsync(CancellationToken cancellationToken) => _device.FlushAsync(cancellationToken).AsTask();

    /// <inheritdoc/>
    public override void Flush() => _device.FlushAsync().AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing && _ownsDevice)
        {
            _device.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        base.Dispose(disposing);
    }

    /// <inheritdoc/>
    public override async ValueTask DisposeAsync()
    {
        if (_ownsDevice)
        {
            await _device.DisposeAsync().ConfigureAwait(false);
        }

        await base.DisposeAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }
}
