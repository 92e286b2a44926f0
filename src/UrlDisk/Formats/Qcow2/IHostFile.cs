namespace UrlDisk.Formats.Qcow2;

/// <summary>The image file as the writer needs it: positional reads, writes that may extend it, flush.</summary>
internal interface IHostFile
{
    long Length { get; }

    ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken);

    ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    ValueTask FlushAsync(CancellationToken cancellationToken);
}
