namespace UrlDisk.Layers.Prefetch;

/// <summary>A byte range of the image file: <c>[Offset, Offset + Length)</c>.</summary>
internal readonly record struct ProfileRange(long Offset, long Length)
{
    public long End => Offset + Length;
}
