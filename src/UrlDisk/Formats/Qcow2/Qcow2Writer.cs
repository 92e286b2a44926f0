using UrlDisk.Operations;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Writes any device's contents into a new qcow2 image (what <c>convert -O qcow2 [-c]</c> does, as a call): the one
/// copy engine (<see cref="ImageCopier"/>) into a <see cref="Qcow2ConvertTarget"/>, so zero clusters stay unallocated
/// and, with <c>compress</c>, each cluster is compressed.
/// </summary>
public static class Qcow2Writer
{
    /// <summary>Creates <paramref name="path"/> with the source's size and copies the source into it; returns the data bytes written.</summary>
    public static async Task<long> ConvertAsync(IBlockDevice source, string path, Qcow2CreateOptions? options = null, bool compress = false,
        IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        await using var target = await Qcow2ConvertTarget.CreateAsync(path, source.Length, options, compress, existing: false, cancellationToken).ConfigureAwait(false);
        // Compression works on whole clusters: chunks (cluster-aligned) are not split at zero runs.
        IBlockDevice from = compress ? new ClusterAlignedExtents(source, target.Image.ClusterSize) : source;
        var copier = new ImageCopier { TargetIsZeroed = target.IsZeroed, DetectZeroes = !compress, Progress = progress is null ? null : progress.Report };
        await copier.CopyAsync(from, target, cancellationToken).ConfigureAwait(false);
        await target.FlushAsync(cancellationToken).ConfigureAwait(false);
        await target.CommitAsync().ConfigureAwait(false);
        return target.DataWritten;
    }
}
