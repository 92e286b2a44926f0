namespace UrlDisk.Fuzz.Targets;

/// <summary>Fuzz input as a read-only block device (an image file in memory).</summary>
internal sealed class MemoryFile(byte[] data) : BlockDevice
{
    public override long Length => data.Length;

    public override BlockDeviceInfo Info { get; } = new() { Driver = "file" };

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        data.AsSpan((int)offset, buffer.Length).CopyTo(buffer.Span);
        return ValueTask.CompletedTask;
    }
}
