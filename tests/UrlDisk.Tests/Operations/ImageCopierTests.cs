using UrlDisk.Operations;
using UrlDisk.Tests.Core;

namespace UrlDisk.Tests.Operations;

public class ImageCopierTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Copies_every_byte_and_skips_zero_runs_only_on_a_zeroed_target(bool targetZeroed)
    {
        var rng = new Random(3);
        var data = new byte[(9 << 20) + 1234];
        rng.NextBytes(data);
        Array.Clear(data, 4096 * 3, 4096 * 50);     // aligned zero run
        Array.Clear(data, (5 << 20) + 17, 100_000);  // unaligned zero run
        var source = new MemoryBlockDevice(data);
        var targetBytes = new byte[data.Length];
        if (!targetZeroed)
        {
            Array.Fill(targetBytes, (byte)0xEE); // garbage that must be zeroed
        }

        var target = new MemoryBlockDevice(targetBytes, writable: true);
        long last = 0;
        var copier = new ImageCopier { ChunkSize = 1 << 20, Parallelism = 4, TargetIsZeroed = targetZeroed, Progress = d => Interlocked.Exchange(ref last, d) };
        await copier.CopyAsync(source, target, CancellationToken.None);
        Assert.Equal(data, target.Data);
        Assert.Equal(data.Length, last);
    }

    [Fact]
    public async Task The_first_error_is_reported()
    {
        var source = new MemoryBlockDevice(new byte[8 << 20])
        {
            BeforeRead = (off, _) => off == 3 << 20 ? Task.FromException(new SourceException("server said no")) : Task.CompletedTask,
        };
        var target = new MemoryBlockDevice(new byte[8 << 20], writable: true);
        var e = await Assert.ThrowsAsync<SourceException>(() => new ImageCopier { ChunkSize = 1 << 20 }.CopyAsync(source, target, CancellationToken.None));
        Assert.Equal("server said no", e.Message);
    }
}
