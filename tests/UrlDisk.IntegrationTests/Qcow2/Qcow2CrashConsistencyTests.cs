using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;
using UrlDisk.Sources.File;

namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary>
/// A crash after any write the image makes leaves at worst leaked clusters: every prefix of the recorded
/// writes, applied to the original file, passes qemu-img check without corruptions.
/// </summary>
public class Qcow2CrashConsistencyTests
{
    private sealed class RecordingHostFile(IHostFile inner) : IHostFile
    {
        public List<(long Offset, byte[] Data)> Writes { get; } = [];

        public long Length => inner.Length;

        public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken) => inner.ReadAsync(offset, buffer, cancellationToken);

        public ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            lock (Writes)
            {
                Writes.Add((offset, data.ToArray()));
            }

            return inner.WriteAtAsync(offset, data, cancellationToken);
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
    }

    [Theory]
    [InlineData("cluster_size=512")]
    [InlineData("cluster_size=4096,refcount_bits=2")]
    [InlineData("extended_l2=on,cluster_size=16k")]
    [InlineData("compat=0.10,cluster_size=1024")]
    public async Task Every_prefix_of_the_writes_is_free_of_corruption(string options)
    {
        using var q = new QemuTools();
        const int size = 3 << 20;
        q.Img("create", "-f", "raw", "base.raw", size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        q.Io("-f", "raw", "-c", "write -P 0x3c 0 3M", "base.raw");
        string path = q.PathOf("top.qcow2");
        await Qcow2Creator.CreateAsync(path, size, Qcow2CreateOptions.Parse(options) with { BackingFile = "base.raw", BackingFormat = "raw" });
        var initial = File.ReadAllBytes(path);
        RecordingHostFile recorder;
        var file = FileSource.Open(path, writable: true);
        recorder = new RecordingHostFile(new FileHostFile(file));
        await using (var image = await Qcow2Image.OpenAsync(file, new OpenContext { Writable = true, BaseLocation = path }, recorder, default))
        {
            var rnd = new Random(options.Length);
            for (int op = 0; op < 60; op++)
            {
                long offset = rnd.NextInt64(size - 1);
                int length = (int)Math.Min(size - offset, rnd.Next(1, 200_000));
                switch (rnd.Next(5))
                {
                    case 0: await image.WriteZeroesAsync(offset, length); break;
                    case 1: await image.TrimAsync(offset, length); break;
                    case 2: await image.WriteCompressedAsync(offset / image.ClusterSize, new byte[image.ClusterSize]); break;
                    default: await image.WriteAsync(offset, new byte[length].Select((_, i) => (byte)(i + op)).ToArray()); break;
                }
            }
        }

        q.Img("check", "top.qcow2");
        var writes = recorder.Writes;
        var prefixes = Enumerable.Range(0, 120).Select(i => (int)((long)i * writes.Count / 120)).Append(writes.Count).Distinct();
        foreach (int k in prefixes)
        {
            var bytes = new MemoryStream();
            bytes.Write(initial);
            foreach (var (offset, data) in writes.Take(k))
            {
                if (offset > bytes.Length)
                {
                    bytes.SetLength(offset);
                }

                bytes.Position = offset;
                bytes.Write(data);
            }

            await File.WriteAllBytesAsync(q.PathOf("crash.qcow2"), bytes.ToArray());
            var (exit, output) = q.RunWithExit("qemu-img", ["check", "crash.qcow2"], [0, 2, 3]);
            Assert.True(exit != 2, $"after {k} of {writes.Count} writes: {output}");
        }
    }
}
