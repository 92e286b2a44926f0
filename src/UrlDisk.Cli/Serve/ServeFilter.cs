namespace UrlDisk.Cli.Serve;

/// <summary>How <c>serve</c> treats discards (qemu-nbd's <c>--discard</c>).</summary>
internal enum DiscardMode
{
    /// <summary>Trims reach the image (holes punched in a raw file, clusters freed in qcow2).</summary>
    Unmap,

    /// <summary>Trims are accepted and do nothing; zero writes never leave holes.</summary>
    Ignore,
}

/// <summary>qemu-nbd's <c>--detect-zeroes</c>: what a WRITE of all-zero data becomes.</summary>
internal enum DetectZeroes
{
    Off,

    /// <summary>A write of zeros becomes a write-zeroes that keeps the range allocated.</summary>
    On,

    /// <summary>A write of zeros becomes a write-zeroes that may leave a hole (needs <see cref="DiscardMode.Unmap"/>).</summary>
    Unmap,
}

/// <summary>
/// What <c>serve</c> puts between the image and the NBD server for qemu-nbd's <c>--offset</c>, <c>--discard</c> and
/// <c>--detect-zeroes</c>: a window starting at an offset, discards passed on or dropped, and zero-data writes turned
/// into write-zeroes. Used only when one of them differs from the default, so a plain serve keeps its direct path.
/// </summary>
internal sealed class ServeFilter : BlockDevice
{
    private readonly IBlockDevice _inner;
    private readonly long _offset;
    private readonly DiscardMode _discard;
    private readonly DetectZeroes _detectZeroes;

    public ServeFilter(IBlockDevice inner, long offset, DiscardMode discard, DetectZeroes detectZeroes)
    {
        _inner = inner;
        _offset = offset;
        _discard = discard;
        _detectZeroes = detectZeroes;
        Length = inner.Length - offset;
        var info = inner.Info;

        // qemu-nbd advertises TRIM on every writable export; with --discard=ignore it is accepted and dropped.
        Info = info with { Child = inner, CanTrim = info.CanWrite, Details = new Dictionary<string, object?>() };
    }

    public static bool Needed(long offset, DiscardMode discard, DetectZeroes detectZeroes)
        => offset != 0 || discard != DiscardMode.Unmap || detectZeroes != DetectZeroes.Off;

    public override long Length { get; }

    public override BlockDeviceInfo Info { get; }

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        => _inner.ReadAsync(_offset + offset, buffer, cancellationToken);

    protected override ValueTask WriteCoreAsync(long offset, ReadOnlyMemory<byte> data, WriteOptions options, CancellationToken cancellationToken)
    {
        if (_detectZeroes != DetectZeroes.Off && !data.Span.ContainsAnyExcept((byte)0))
        {
            var zeroOptions = options & WriteOptions.ForceUnitAccess;
            if (_detectZeroes == DetectZeroes.On || _discard == DiscardMode.Ignore)
            {
                zeroOptions |= WriteOptions.NoHole;
            }

            return _inner.WriteZeroesAsync(_offset + offset, data.Length, zeroOptions, cancellationToken);
        }

        return _inner.WriteAsync(_offset + offset, data, options, cancellationToken);
    }

    protected override ValueTask WriteZeroesCoreAsync(long offset, long length, WriteOptions options, CancellationToken cancellationToken)
        => _inner.WriteZeroesAsync(_offset + offset, length, _discard == DiscardMode.Ignore ? options | WriteOptions.NoHole : options, cancellationToken);

    protected override ValueTask TrimCoreAsync(long offset, long length, CancellationToken cancellationToken)
        => _discard == DiscardMode.Ignore || !_inner.Info.CanTrim ? ValueTask.CompletedTask : _inner.TrimAsync(_offset + offset, length, cancellationToken);

    public override ValueTask FlushAsync(CancellationToken cancellationToken = default) => _inner.FlushAsync(cancellationToken);

    public override ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken = default)
        => _inner.PrefetchAsync(_offset + offset, length, cancellationToken);

    protected override async ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        var inner = await _inner.GetExtentsAsync(_offset + offset, length, cancellationToken).ConfigureAwait(false);
        return _offset == 0 ? inner : inner.Select(e => e with { Offset = e.Offset - _offset }).ToList();
    }

    protected override ValueTask DisposeCoreAsync() => _inner.DisposeAsync();
}
