using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Operations;

/// <summary>
/// qemu-img commit: the clusters an overlay (and the layers between it and the base) hold are written into the
/// base image, through the one copy engine with only the top layers copied; then the overlay is emptied (all
/// its clusters unallocated, so it reads through to the base again) unless it is to be dropped. The base must
/// be a writable local file; one smaller than the overlay is grown first.
/// </summary>
internal static class ImageCommit
{
    /// <param name="top">The overlay, opened writable.</param>
    /// <param name="baseName">qemu-img's <c>-b</c>: a backing file in the chain (as stored, resolved, or as a path); null for the immediate one.</param>
    /// <param name="empty">Unallocate the overlay's clusters afterwards (qemu-img: unless <c>-d</c> or <c>-b</c>).</param>
    public static async Task CommitAsync(Qcow2Image top, string topName, string? baseName, bool empty, Action<long>? progress, CancellationToken cancellationToken)
    {
        // Find the base: how many layers down it is, where it lives and its format.
        Qcow2Image layer = top;
        int depth = 1;
        string location;
        string? format;
        while (true)
        {
            location = layer.BackingLocation
                ?? throw new UrlDiskException(depth == 1
                    ? $"commit: '{Redact.Spec(topName)}' has no backing file; there is nothing to commit into"
                    : $"commit: '{Redact.Spec(baseName!)}' is not in the backing chain of '{Redact.Spec(topName)}'");
            format = layer.HeaderCluster.BackingFormat;
            if (baseName is null || Matches(layer, location, baseName))
            {
                break;
            }

            if (await layer.GetBackingAsync(cancellationToken).ConfigureAwait(false) is not Qcow2Image below)
            {
                throw new UrlDiskException($"commit: '{Redact.Spec(baseName)}' is not in the backing chain of '{Redact.Spec(topName)}'");
            }

            layer = below;
            depth++;
        }

        var baseSpec = SpecParser.ParseFilename(location);
        string basePath = LocalImage.PathOf(baseSpec)
            ?? throw new UrlDiskException($"commit: the base image '{Redact.Spec(location)}' is not a local file; commit writes into the base, so it must be a writable local image (rebase onto a local copy first)");
        if (!File.Exists(basePath))
        {
            throw new UrlDiskException($"commit: the base image '{Redact.Spec(basePath)}' does not exist");
        }

        // Open the base first: a format that cannot be written is refused before anything changes.
        bool grow;
        await using (var target = await OpenBaseAsync(baseSpec, basePath, format, cancellationToken).ConfigureAwait(false))
        {
            grow = target.Length < top.Length;
            if (!grow)
            {
                await CopyAsync(top, target, depth, progress, cancellationToken).ConfigureAwait(false);
            }
        }

        if (grow)
        {
            // As qemu-img: a base smaller than the overlay is grown to the overlay's size.
            await ImageResizer.ResizeAsync(baseSpec, basePath, format, _ => top.Length, shrink: false, "off", cancellationToken).ConfigureAwait(false);
            await using var target = await OpenBaseAsync(baseSpec, basePath, format, cancellationToken).ConfigureAwait(false);
            await CopyAsync(top, target, depth, progress, cancellationToken).ConfigureAwait(false);
        }

        if (empty)
        {
            await top.UnallocateAsync(0, (top.Length + top.ClusterSize - 1) & ~((long)top.ClusterSize - 1), cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<IBlockDevice> OpenBaseAsync(OptionTree spec, string path, string? format, CancellationToken cancellationToken)
    {
        var image = await ImageOpener.OpenAsync(spec, format, new OpenContext { Writable = true, BaseLocation = path }, cancellationToken).ConfigureAwait(false);
        if (!image.Info.CanWrite || image.Info.Driver is not ("raw" or "qcow2"))
        {
            string driver = image.Info.Driver;
            await image.DisposeAsync().ConfigureAwait(false);
            throw new UrlDiskException($"commit: the base image '{Redact.Spec(path)}' ({driver}) cannot be written; commit writes into raw and qcow2 local files");
        }

        return image;
    }

    private static async Task CopyAsync(Qcow2Image top, IBlockDevice target, int depth, Action<long>? progress, CancellationToken cancellationToken)
    {
        await new ImageCopier { MaxDepth = depth, Progress = progress }.CopyAsync(top, target, cancellationToken).ConfigureAwait(false);
        await target.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>qemu-img's -b names a chain member by its stored name, its resolved location or the same local file.</summary>
    private static bool Matches(Qcow2Image layer, string location, string baseName)
    {
        if (baseName == location || baseName == layer.BackingFileName)
        {
            return true;
        }

        return LocalImage.PathOf(SpecParser.ParseFilename(location)) is { } path
            && LocalImage.PathOf(SpecParser.ParseFilename(baseName)) is { } wanted
            && Path.GetFullPath(path) == Path.GetFullPath(wanted);
    }
}
