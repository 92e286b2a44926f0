using UrlDisk.Sources.File;

namespace UrlDisk.Formats.Qcow2;

/// <summary>A writable local file as an <see cref="IHostFile"/>.</summary>
internal sealed class FileHostFile(FileSource file) : IHostFile
{
    public long Length => file.Length;

    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken) => file.ReadAsync(offset, buffer, cancellationToken);

    public ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => file.WriteAtAsync(offset, data, cancellationToken);

    public ValueTask FlushAsync(CancellationToken cancellationToken) => file.FlushAsync(cancellationToken);
}
