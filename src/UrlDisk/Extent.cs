namespace UrlDisk;

/// <summary>The allocation status of an <see cref="Extent"/>.</summary>
[Flags]
public enum ExtentFlags
{
    /// <summary>Allocated data.</summary>
    Data = 0,

    /// <summary>Not allocated at this level (reads come from below, or zeros).</summary>
    Hole = 1,

    /// <summary>Reads as zeros.</summary>
    Zero = 2,
}

/// <summary>A run of bytes with the same allocation status.</summary>
/// <param name="Depth">How many layers of a backing chain down the data lives (0 = this image).</param>
/// <param name="HostOffset">Where the data lives in the image file, when known.</param>
public readonly record struct Extent(long Offset, long Length, ExtentFlags Flags, int Depth = 0, long? HostOffset = null)
{
    /// <summary>The offset just past the extent.</summary>
    public long End => Offset + Length;
    /// <summary>The extent reads as zeros.</summary>
    public bool IsZero => (Flags & ExtentFlags.Zero) != 0;
    /// <summary>The extent is not allocated at this level.</summary>
    public bool IsHole => (Flags & ExtentFlags.Hole) != 0;
}
