namespace UrlDisk.Formats.Vmdk;

/// <summary>A ZERO extent: no file, reads as zeros.</summary>
internal sealed class ZeroExtent(long length) : VmdkExtent
{
    public override long Length => length;

    public override IBlockDevice? File => null;

    public override ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        buffer.Span.Clear();
        return ValueTask.CompletedTask;
    }

    public override ValueTask<IReadOnlyList<Extent>> MapAsync(long offset, long length, CancellationToken cancellationToken)
        => new([new Extent(offset, length, ExtentFlags.Zero)]);

    public override Dictionary<string, object?> Describe(string filename, string format)
        => new() { ["virtual-size"] = Length, ["filename"] = filename, ["format"] = format };
}
