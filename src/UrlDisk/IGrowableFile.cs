namespace UrlDisk;

/// <summary>
/// A writable host file that can grow: writes past the end extend it, and its length can be set. Formats that
/// allocate at the end of their file (qcow2 create, convert, writes, check repairs) ask the device below for this
/// capability, never for a particular source; the local file source implements it.
/// </summary>
internal interface IGrowableFile : IBlockDevice
{
    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>, extending the file when it ends past it.</summary>
    ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default);

    /// <summary>Grows or shrinks the file.</summary>
    void SetLength(long length);
}
