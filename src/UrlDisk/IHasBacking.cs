namespace UrlDisk;

/// <summary>
/// An image over a backing (parent) image: qcow2 overlays, VMDK, VHD and VHDX differencing disks. Front ends walk a
/// chain through this, without asking which format an image is.
/// </summary>
internal interface IHasBacking
{
    /// <summary>Where the backing image is opened from (path, URL or json: spec); null without one (or when not opened, <c>-U</c> style).</summary>
    string? BackingLocation { get; }

    /// <summary>Opens the backing image (once) and returns it; null when there is none.</summary>
    ValueTask<IBlockDevice?> GetBackingAsync(CancellationToken cancellationToken = default);
}
