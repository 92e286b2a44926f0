namespace UrlDisk.Formats.Raw;

/// <summary>A window of the file below; everything passes through.</summary>
internal sealed class RawImage : BlockDevice
{
    private readonly IBlockDevice _file;
    private readonly long _offset;
    private readonly long _length;

    public RawImage(IBlockDevice file, long offset, long length)
    {
        _file = file;
        _offset = offset;
        _length = length;
        var fi = file.Info;
        Info = fi with { Driver = "raw", Child = file, Details = new Dictionary<string, object?>() };
    }

    /// <summary>Where the image starts in its file (the raw driver's offset option).</summary>
    public long Offset => _offset;

    public override long Length => _length;

    public override BlockDeviceInfo Info { get; }

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        => _file.ReadAsync(_offset + offset, buffer, cancellationToken);

    protected override ValueTask WriteCoreAsync(long offset, ReadOnlyMemory<byte> data, WriteOptions options, CancellationToken cancellationToken)
        => _file.WriteAsync(_offset + offset, data, options, cancellationToken);

    protected override ValueTask WriteZeroesCoreAsync(long offset, long length, WriteOptions options, CancellationToken cancellationToken)
        => _file.WriteZeroesAsync(_offset + offset, length, options, cancellationToken);

    protected override ValueTask TrimCoreAsync(long offset, long length, CancellationToken cancellationToken)
        => _file.TrimAsync(_offset + offset, length, cancellationToken);

    public override ValueTask FlushAsync(CancellationToken cancellationToken = default) => _file.FlushAsync(cancellationToken);

    public override ValueTask PrefetchAsync(long offset, long length, CancellationToken cancellationToken = default)
        => _file.PrefetchAsync(_offset + offset, length, cancellationToken);

    protected override async ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        var inner = await _file.GetExtentsAsync(_offset + offset, length, cancellationToken).ConfigureAwait(false);
        // Data lives at the same place in the file (what qemu-img map shows as "offset").
        return inner.Select(e => e with
        {
            Offset = e.Offset - _offset,
            HostOffset = e.HostOffset ?? (e.IsHole || e.IsZero ? null : e.Offset),
        }).ToList();
    }

    protected override ValueTask DisposeCoreAsync() => _file.DisposeAsync();
}
