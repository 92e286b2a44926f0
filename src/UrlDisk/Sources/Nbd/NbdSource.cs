using UrlDisk.Nbd.Wire;

namespace UrlDisk.Sources.Nbd;

/// <summary>
/// An NBD export as a read-only source (qemu's <c>nbd</c> driver for reading): one connection, one request at a time;
/// reads larger than the server's maximum block size are split, and unaligned ones widened to its minimum.
/// Extents come from the server's <c>base:allocation</c> when it has it.
/// </summary>
internal sealed class NbdSource : BlockDevice
{
    private readonly NbdClient _client;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly int _minimum;
    private readonly int _maximum;

    public NbdSource(NbdClient client)
    {
        _client = client;
        _minimum = (int)Math.Clamp(client.MinimumBlockSize, 1, 64 * 1024);
        _maximum = (int)Math.Clamp(client.MaximumBlockSize, (uint)_minimum, 32u << 20) / _minimum * _minimum;
        Length = (long)Math.Min(client.Size, long.MaxValue);
        Info = new BlockDeviceInfo
        {
            Driver = "nbd",
            DisplayName = client.Address.Display,
            ReportsAllocation = client.BaseAllocationId is not null,
            MinimumBlockSize = _minimum,
            PreferredBlockSize = (int)Math.Clamp(client.PreferredBlockSize, 512, 2u << 20),
            Details = new Dictionary<string, object?>
            {
                ["protocol"] = "nbd",
                ["url"] = client.Address.Display,
                ["export"] = client.Address.ExportName,
                ["structured-replies"] = client.StructuredReplies,
                ["block-status"] = client.BaseAllocationId is not null,
            },
        };
    }

    public override long Length { get; }

    public override BlockDeviceInfo Info { get; }

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        long start = offset / _minimum * _minimum;
        long end = Math.Min(Length, (offset + buffer.Length + _minimum - 1) / _minimum * _minimum);
        if (start != offset || end != offset + buffer.Length)
        {
            var bounce = new byte[end - start];
            await ReadAlignedAsync(start, bounce, cancellationToken).ConfigureAwait(false);
            bounce.AsMemory((int)(offset - start), buffer.Length).CopyTo(buffer);
            return;
        }

        await ReadAlignedAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask ReadAlignedAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (buffer.Length > 0)
            {
                int n = Math.Min(buffer.Length, _maximum);
                await _client.ReadAsync(offset, buffer[..n], cancellationToken).ConfigureAwait(false);
                offset += n;
                buffer = buffer[n..];
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    protected override async ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        if (_client.BaseAllocationId is null)
        {
            return [new Extent(offset, length, ExtentFlags.Data)];
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var extents = await _client.BlockStatusAsync(offset, length, cancellationToken).ConfigureAwait(false);
            return extents.Count > 0 ? extents : [new Extent(offset, length, ExtentFlags.Data)];
        }
        finally
        {
            _gate.Release();
        }
    }

    protected override async ValueTask DisposeCoreAsync()
    {
        try
        {
            using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _client.DisconnectAsync(quick.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            // The server is gone already: nothing to say goodbye to.
        }

        await _client.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
    }
}
