namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary>A read-only device over bytes in memory that counts reads (for mutation and request-count tests).</summary>
internal sealed class MemoryImage(byte[] bytes, string name = "memory") : BlockDevice
{
    private int _reads;

    public int Reads => Volatile.Read(ref _reads);

    public override long Length => bytes.Length;

    public override BlockDeviceInfo Info { get; } = new() { Driver = "file", DisplayName = name };

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Interlocked.Increment(ref _reads);
        bytes.AsSpan((int)offset, buffer.Length).CopyTo(buffer.Span);
        return ValueTask.CompletedTask;
    }
}
