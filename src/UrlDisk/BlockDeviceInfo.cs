namespace UrlDisk;

/// <summary>Capabilities of a block device and facts it learned while opening.</summary>
public sealed record BlockDeviceInfo
{
    /// <summary>Driver name: "http", "file", "raw", "qcow2", …</summary>
    public required string Driver { get; init; }

    /// <summary>Where the data comes from, with credentials removed.</summary>
    public string? DisplayName { get; init; }

    /// <summary>Writes are accepted.</summary>
    public bool CanWrite { get; init; }
    /// <summary>Write-zeroes is done efficiently (without sending zero buffers).</summary>
    public bool CanWriteZeroes { get; init; }
    /// <summary>Trim (discard) does something.</summary>
    public bool CanTrim { get; init; }
    /// <summary>Flush makes writes durable.</summary>
    public bool CanFlush { get; init; }

    /// <summary>True when <see cref="IBlockDevice.GetExtentsAsync"/> reports real holes or zeros.</summary>
    public bool ReportsAllocation { get; init; }

    /// <summary>Smallest alignment at which I/O is efficient.</summary>
    public int MinimumBlockSize { get; init; } = 1;

    /// <summary>I/O size that works best.</summary>
    public int PreferredBlockSize { get; init; } = 4096;

    /// <summary>
    /// Extra facts to show in <c>info</c> (protocol, final URL, validators, …). Keys are stable, lower-case with dashes.
    /// A format uses qemu-img info's names for what qemu-img shows: <c>cluster-size</c>, <c>dirty-flag</c>,
    /// <c>backing-filename</c>, <c>full-backing-filename</c>, <c>backing-filename-format</c>, <c>snapshots</c>, and
    /// <c>format-specific</c> (a dictionary: qemu's format-specific data); any other key is UrlDisk's own.
    /// Values are null, string, bool, an integer (int, uint, long, ulong), a nested dictionary of the same, or a list of such dictionaries
    /// (qcow2 snapshots): a closed set, so front ends print them without reflection.
    /// </summary>
    public IReadOnlyDictionary<string, object?> Details { get; init; } = new Dictionary<string, object?>();

    /// <summary>The device this one reads from, if any (format → protocol, layer → inner).</summary>
    public IBlockDevice? Child { get; init; }
}
