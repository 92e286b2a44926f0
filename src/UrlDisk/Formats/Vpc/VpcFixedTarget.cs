using UrlDisk.Operations;

namespace UrlDisk.Formats.Vpc;

/// <summary>
/// A fixed VHD being written by convert: the disk's bytes in a raw file, then the footer after them. The footer is
/// written last, by <see cref="CommitAsync"/>, so a failed convert leaves no file that looks complete.
/// </summary>
internal sealed class VpcFixedTarget : BlockDevice
{
    private readonly RawFileTarget _raw;

    private VpcFixedTarget(RawFileTarget raw, VpcFooter footer)
    {
        _raw = raw;
        Footer = footer;
        Info = raw.Info with { Driver = "vpc", Child = raw };
    }

    public VpcFooter Footer { get; }

    public bool IsZeroed => _raw.IsZeroed;

    public override long Length => (long)Footer.CurrentSize;

    public override BlockDeviceInfo Info { get; }

    public static VpcFixedTarget Create(string path, long length, VpcCreateOptions options, bool existing, bool sync)
    {
        var footer = options.FooterFor(length, DateTimeOffset.UtcNow);
        var raw = RawFileTarget.Create(path, (long)footer.CurrentSize + VpcFooter.Size, existing, sync);
        return new VpcFixedTarget(raw, footer);
    }

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        => throw new NotSupportedException("convert targets are write-only");

    protected override ValueTask WriteCoreAsync(long offset, ReadOnlyMemory<byte> data, WriteOptions options, CancellationToken cancellationToken)
        => _raw.WriteAsync(offset, data, options, cancellationToken);

    protected override ValueTask WriteZeroesCoreAsync(long offset, long length, WriteOptions options, CancellationToken cancellationToken)
        => _raw.WriteZeroesAsync(offset, length, options, cancellationToken);

    public override ValueTask FlushAsync(CancellationToken cancellationToken = default) => _raw.FlushAsync(cancellationToken);

    /// <summary>Writes the footer after the data and moves the file into place.</summary>
    public async ValueTask CommitAsync(CancellationToken cancellationToken)
    {
        var bytes = new byte[VpcFooter.Size];
        Footer.Write(bytes);
        await _raw.WriteAsync(Length, bytes, default, cancellationToken).ConfigureAwait(false);
        await _raw.FlushAsync(cancellationToken).ConfigureAwait(false);
        await _raw.CommitAsync().ConfigureAwait(false);
    }

    protected override ValueTask DisposeCoreAsync() => _raw.DisposeAsync();
}
