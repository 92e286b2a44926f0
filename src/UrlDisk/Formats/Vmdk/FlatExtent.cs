namespace UrlDisk.Formats.Vmdk;

/// <summary>A FLAT or VMFS extent: a window of a plain file (vSphere's <c>-flat.vmdk</c>, monolithicFlat, the 2 GiB pieces).</summary>
internal sealed class FlatExtent : VmdkExtent
{
    private readonly IBlockDevice _file;
    private readonly long _start;
    private readonly long _length;

    public FlatExtent(IBlockDevice file, long start, long length, string name)
    {
        if (start > file.Length || length > file.Length - start)
        {
            throw new ImageFormatException($"vmdk: flat extent '{name}' needs bytes {start} to {start + length}, but the file is {file.Length} bytes");
        }

        _file = file;
        _start = start;
        _length = length;
    }

    public override long Length => _length;

    public override IBlockDevice File => _file;

    public override ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        => _file.ReadAsync(_start + offset, buffer, cancellationToken);

    public override async ValueTask<IReadOnlyList<Extent>> MapAsync(long offset, long length, CancellationToken cancellationToken)
    {
        var inner = await _file.GetExtentsAsync(_start + offset, length, cancellationToken).ConfigureAwait(false);
        // A flat extent has no holes of its own: sparse regions of the file read as zeros, never from a parent.
        return inner.Select(e => new Extent(
            e.Offset - _start,
            e.Length,
            e.IsZero || e.IsHole ? ExtentFlags.Zero : ExtentFlags.Data,
            0,
            e.IsZero || e.IsHole ? null : e.Offset)).ToList();
    }

    public override Dictionary<string, object?> Describe(string filename, string format)
        => new() { ["virtual-size"] = Length, ["filename"] = filename, ["format"] = format };
}
