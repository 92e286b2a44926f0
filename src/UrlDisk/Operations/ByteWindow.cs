namespace UrlDisk.Operations;

/// <summary>
/// Bytes [start, start + length) of a device as a device of their own (dd's skip and count), extents included, so
/// the copier still skips holes. Read-only; disposing the window leaves the device open.
/// </summary>
internal sealed class ByteWindow : BlockDevice
{
    private readonly IBlockDevice _device;
    private readonly long _start;

    public ByteWindow(IBlockDevice device, long start, long length)
    {
        if (start < 0 || length < 0 || start > device.Length || length > device.Length - start)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"bytes {start}+{length} are outside the device ({device.Length} bytes)");
        }

        _device = device;
        _start = start;
        Length = length;
        Info = new BlockDeviceInfo { Driver = device.Info.Driver, DisplayName = device.Info.DisplayName, ReportsAllocation = device.Info.ReportsAllocation, Child = device };
    }

    public override long Length { get; }

    public override BlockDeviceInfo Info { get; }

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        => _device.ReadAsync(_start + offset, buffer, cancellationToken);

    protected override async ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        var inner = await _device.GetExtentsAsync(_start + offset, length, cancellationToken).ConfigureAwait(false);
        var result = new List<Extent>(inner.Count);
        foreach (var e in inner)
        {
            long from = Math.Max(e.Offset, _start + offset), to = Math.Min(e.End, _start + offset + length);
            if (to > from)
            {
                result.Add(e with { Offset = from - _start, Length = to - from, HostOffset = null });
            }
        }

        return result;
    }
}
