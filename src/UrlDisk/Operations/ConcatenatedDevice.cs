namespace UrlDisk.Operations;

/// <summary>
/// Several images one after another, as qemu-img convert reads several sources into one target. Each part is
/// padded with zeros to a multiple of 512 bytes (qemu-img counts sources in whole sectors). Read-only; it owns
/// the parts and disposes them.
/// </summary>
internal sealed class ConcatenatedDevice : BlockDevice
{
    private const int Sector = 512;
    private readonly IBlockDevice[] _parts;
    private readonly long[] _starts;

    public ConcatenatedDevice(IReadOnlyList<IBlockDevice> parts)
    {
        _parts = [.. parts];
        _starts = new long[_parts.Length + 1];
        for (int i = 0; i < _parts.Length; i++)
        {
            _starts[i + 1] = _starts[i] + ((_parts[i].Length + Sector - 1) & ~(long)(Sector - 1));
        }

        Info = new BlockDeviceInfo { Driver = "concat", DisplayName = string.Join(" + ", _parts.Select(p => p.Info.DisplayName)), ReportsAllocation = true };
    }

    public override long Length => _starts[^1];

    public override BlockDeviceInfo Info { get; }

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        foreach (var (part, partOffset, at, length) in Pieces(offset, buffer.Length))
        {
            var slice = buffer.Slice((int)at, (int)length);
            long real = Math.Clamp(_parts[part].Length - partOffset, 0, length);
            if (real > 0)
            {
                await _parts[part].ReadAsync(partOffset, slice[..(int)real], cancellationToken).ConfigureAwait(false);
            }

            slice[(int)real..].Span.Clear();
        }
    }

    protected override async ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        var result = new List<Extent>();
        foreach (var (part, partOffset, at, n) in Pieces(offset, length))
        {
            long start = offset + at;
            long real = Math.Clamp(_parts[part].Length - partOffset, 0, n);
            if (real > 0)
            {
                foreach (var e in await _parts[part].GetExtentsAsync(partOffset, real, cancellationToken).ConfigureAwait(false))
                {
                    result.Add(e with { Offset = e.Offset - partOffset + start, HostOffset = null });
                }
            }

            if (real < n)
            {
                result.Add(new Extent(start + real, n - real, ExtentFlags.Zero));
            }
        }

        return result;
    }

    /// <summary>The parts a range covers: part index, offset inside the part, offset inside the range, length.</summary>
    private IEnumerable<(int Part, long PartOffset, long At, long Length)> Pieces(long offset, long length)
    {
        long end = offset + length;
        for (int i = 0; i < _parts.Length && offset < end; i++)
        {
            if (_starts[i + 1] <= offset)
            {
                continue;
            }

            long n = Math.Min(end, _starts[i + 1]) - offset;
            yield return (i, offset - _starts[i], length - (end - offset), n);
            offset += n;
        }
    }

    protected override async ValueTask DisposeCoreAsync()
    {
        foreach (var part in _parts)
        {
            await part.DisposeAsync().ConfigureAwait(false);
        }
    }
}
