namespace UrlDisk.Tests.Core;

public class BlockDeviceStreamTests
{
    [Fact]
    public async Task Reads_seeks_and_stops_at_the_end()
    {
        var data = Enumerable.Range(0, 10000).Select(i => (byte)(i * 7)).ToArray();
        await using var stream = new BlockDeviceStream(new MemoryBlockDevice(data), ownsDevice: true);
        Assert.True(stream.CanSeek);
        Assert.False(stream.CanWrite);
        stream.Seek(-100, SeekOrigin.End);
        var buf = new byte[300];
        int n = await stream.ReadAsync(buf);
        Assert.Equal(100, n);
        Assert.Equal(data[^100..], buf[..100]);
        Assert.Equal(0, await stream.ReadAsync(buf));

        stream.Position = 0;
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        Assert.Equal(data, copy.ToArray());
    }

    [Fact]
    public async Task Writes_go_to_the_device_and_not_past_its_end()
    {
        var device = new MemoryBlockDevice(new byte[1024], writable: true);
        await using var stream = new BlockDeviceStream(device);
        stream.Position = 1000;
        await stream.WriteAsync(new byte[] { 1, 2, 3 });
        Assert.Equal(new byte[] { 1, 2, 3 }, device.Data[1000..1003]);
        await Assert.ThrowsAsync<IOException>(async () => await stream.WriteAsync(new byte[100]));
    }
}
