namespace UrlDisk.Formats.Qcow2;

/// <summary>A writable, growable host file (the <see cref="IGrowableFile"/> capability of the device below) as an <see cref="IHostFile"/>.</summary>
internal sealed class FileHostFile(IGrowableFile file) : IHostFile
{
    public long Length => file.Length;

    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken) => file.ReadAsync(offset, buffer, cancellationToken);

    public ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => file.WriteAtAsync(offset, data, cancellationToken);

    public ValueTask FlushAsync(CancellationToken cancellationToken) => file.FlushAsync(cancellationToken);
}
