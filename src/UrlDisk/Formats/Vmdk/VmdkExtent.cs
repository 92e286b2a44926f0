namespace UrlDisk.Formats.Vmdk;

/// <summary>
/// One extent of a VMDK: a piece of the virtual disk stored one way (sparse, flat or zero). Offsets are relative
/// to the extent. Unallocated parts (<see cref="ExtentFlags.Hole"/>) read as zeros here; the image reads its parent there.
/// </summary>
internal abstract class VmdkExtent : IAsyncDisposable
{
    public abstract long Length { get; }

    /// <summary>The file the extent lives in (null for ZERO).</summary>
    public abstract IBlockDevice? File { get; }

    public abstract ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Allocation of <c>[offset, offset + length)</c>, in order; may end early.</summary>
    public abstract ValueTask<IReadOnlyList<Extent>> MapAsync(long offset, long length, CancellationToken cancellationToken);

    /// <summary>The extent's entry in <c>info</c>'s <c>extents</c> list.</summary>
    public abstract Dictionary<string, object?> Describe(string filename, string format);

    public virtual ValueTask DisposeAsync() => File?.DisposeAsync() ?? ValueTask.CompletedTask;
}
