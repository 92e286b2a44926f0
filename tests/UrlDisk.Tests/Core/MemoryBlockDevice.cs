namespace UrlDisk.Tests.Core;

/// <summary>An in-memory device for layer tests; counts reads so tests can see what reached it.</summary>
internal sealed class MemoryBlockDevice(byte[] data, bool writable = false) : BlockDevice
{
    private int _reads;

    public byte[] Data { get; } = data;

    public int Reads => Volatile.Read(ref _reads);

    public Func<long, int, Task>? BeforeRead { get; set; }

    public override long Length => Data.Length;

    public override BlockDeviceInfo Info { get; } = new() { Driver = "memory", CanWrite = writable };

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _reads);
        if (BeforeRead is not null)
        {
            await BeforeRead(offset, buffer.Length).ConfigureAwait(false);
        }

        Data.AsSpan((int)offset, buffer.Length).CopyTo(buffer.Span);
    }

    protected override ValueTask WriteCoreAsync(long offset, ReadOnlyMemory<byte> data, WriteOptions options, CancellationToken cancellationToken)
    {
        data.Span.CopyTo(Data.AsSpan((int)offset));
        return ValueTask.CompletedTask;
    }
}
