using UrlDisk.Sources.File;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Rewrites the backing file name and format stored in a qcow2 header cluster (rebase, and rebase -u after a
/// base image moved). The image's data is not touched; cluster 0 is written in one write and flushed.
/// </summary>
internal static class Qcow2BackingEditor
{
    /// <summary>Stores <paramref name="name"/> (null: no backing file) and <paramref name="format"/> in the image at <paramref name="path"/>.</summary>
    public static async Task SetBackingAsync(string path, string? name, string? format, CancellationToken cancellationToken)
    {
        if (name is { Length: > 1023 } || (name is not null && System.Text.Encoding.UTF8.GetByteCount(name) > 1023))
        {
            throw new OptionException("qcow2: the backing file name is longer than 1023 bytes");
        }

        await using var file = FileSource.Open(path, writable: true);
        var head = new byte[(int)Math.Min(file.Length, 64 * 1024)];
        await file.ReadAsync(0, head, cancellationToken).ConfigureAwait(false);
        if (!Qcow2Header.TryRead(head, out var header, out string? error))
        {
            throw new ImageFormatException($"qcow2: {error}");
        }

        var cluster0 = new byte[header.ClusterSize];
        await file.ReadAsync(0, cluster0.AsMemory(0, (int)Math.Min(cluster0.Length, file.Length)), cancellationToken).ConfigureAwait(false);
        if (!Qcow2HeaderCluster.TryRead(cluster0, out var hc, out error))
        {
            throw new ImageFormatException($"qcow2: {error}");
        }

        Qcow2Image.ThrowIfUnsupported(hc);
        var edited = hc with { BackingFile = name, BackingFormat = name is null ? null : format };
        var bytes = new byte[header.ClusterSize];
        if (!edited.TryWrite(bytes, out _))
        {
            // Small clusters: the optional feature-name table makes room, as at create.
            edited = edited with { FeatureNames = [] };
            if (!edited.TryWrite(bytes, out _))
            {
                throw new OptionException($"qcow2: the header and the backing file name do not fit in one {header.ClusterSize}-byte cluster; use a shorter name");
            }
        }

        await file.WriteAtAsync(0, bytes, cancellationToken).ConfigureAwait(false);
        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
