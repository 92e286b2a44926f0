using System.Buffers.Binary;
using System.Diagnostics;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary>Malformed images: every case gives an error naming the problem, or data; never a crash or a hang.</summary>
public class Qcow2RobustnessTests
{
    private static byte[] MakeImage(QemuTools q, string name, params string[] convertOptions)
    {
        if (!File.Exists(q.PathOf("src.raw")))
        {
            q.Img("create", "-f", "raw", "src.raw", "3M");
            q.Io("-f", "raw", "-c", "write -P 0x11 0 300k", "-c", "write -P 0x22 1M 200k", "-c", "write -P 0x33 2500k 20k", "src.raw");
        }

        q.Img(["convert", "-O", "qcow2", .. convertOptions, "src.raw", name]);
        return File.ReadAllBytes(q.PathOf(name));
    }

    public static TheoryData<string, string> Images => new()
    {
        { "plain", "-o;cluster_size=4096" },
        { "compressed", "-c;-o;cluster_size=4096" },
        { "zstd", "-c;-o;compression_type=zstd,cluster_size=4096" },
        { "extended", "-o;extended_l2=on,cluster_size=16384" },
        { "v2", "-o;compat=0.10,cluster_size=512" },
    };

    [Theory]
    [MemberData(nameof(Images))]
    public async Task Corrupted_metadata_gives_an_error_or_data_never_a_crash(string kind, string options)
    {
        using var q = new QemuTools();
        var original = MakeImage(q, kind + ".qcow2", options.Split(';'));
        if (kind == "plain")
        {
            q.Img("snapshot", "-c", "s", kind + ".qcow2");
            original = File.ReadAllBytes(q.PathOf(kind + ".qcow2"));
        }

        Assert.True(Qcow2HeaderCluster.TryRead(original, out var hc, out _));
        var h = hc.Header;
        // Metadata regions worth corrupting: header and extensions, L1, the first L2 table, refcount table, snapshot table.
        var l1 = (long)h.L1TableOffset;
        long firstL2 = (long)(BinaryPrimitives.ReadUInt64BigEndian(original.AsSpan((int)l1)) & Qcow2Entries.OffsetMask);
        var regions = new List<(long Start, int Length)>
        {
            (0, 128),
            (0, (int)Math.Min(h.ClusterSize, 1024)),
            (l1, (int)(h.L1Size * 8)),
            (firstL2, (int)Math.Min(h.ClusterSize, 2048)),
            ((long)h.RefcountTableOffset, 64),
        };
        if (h.SnapshotCount > 0)
        {
            regions.Add(((long)h.SnapshotsOffset, 96));
        }

        var rnd = new Random(kind.Length * 7919);
        int errors = 0, successes = 0;
        var total = Stopwatch.StartNew();
        for (int i = 0; i < 600; i++)
        {
            var bytes = (byte[])original.Clone();
            var (start, length) = regions[rnd.Next(regions.Count)];
            length = (int)Math.Min(length, bytes.Length - start);
            int flips = rnd.Next(1, 4);
            for (int f = 0; f < flips; f++)
            {
                long at = start + rnd.Next(length);
                switch (rnd.Next(3))
                {
                    case 0: bytes[at] ^= (byte)(1 << rnd.Next(8)); break;
                    case 1: bytes[at] = (byte)rnd.Next(256); break;
                    default: bytes[at] = 0xFF; break;
                }
            }

            if (rnd.Next(10) == 0)
            {
                Array.Resize(ref bytes, rnd.Next(bytes.Length));
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var watch = Stopwatch.StartNew();
            try
            {
                await ExerciseAsync(bytes, q.Dir, cts.Token);
                successes++;
            }
            catch (UrlDiskException)
            {
                errors++;
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"case {i} ({kind}) took longer than 10 s");
            }
            catch (Exception e)
            {
                Assert.Fail($"case {i} ({kind}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }

            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"case {i} took {watch.Elapsed}");
        }

        Assert.True(errors > 0, "some mutations must be detected");
        Assert.True(successes > 0, "some mutations are harmless");
        Assert.True(total.Elapsed < TimeSpan.FromMinutes(2));
    }

    private static async Task ExerciseAsync(byte[] bytes, string dir, CancellationToken ct)
    {
        var context = new OpenContext { BaseLocation = Path.Combine(dir, "mutated.qcow2") };
        await using (var image = await Qcow2Image.OpenAsync(new MemoryImage(bytes), context, ct))
        {
            var buffer = new byte[Math.Min(image.Length, 4L << 20)];
            await image.ReadAsync(0, buffer, ct);
            await image.GetExtentsAsync(0, buffer.Length, ct);
        }

        await Qcow2Checker.CheckAsync(new MemoryImage(bytes), null, ct);
    }

    [Fact]
    public async Task Unknown_incompatible_feature_is_named_from_the_feature_table()
    {
        using var q = new QemuTools();
        var bytes = MakeImage(q, "f.qcow2");
        Assert.True(Qcow2HeaderCluster.TryRead(bytes, out var hc, out _));
        var changed = hc with
        {
            Header = hc.Header with { IncompatibleFeatures = 1UL << 9 },
            FeatureNames = [.. hc.FeatureNames, new FeatureName(FeatureType.Incompatible, 9, "time travel")],
        };
        Assert.True(changed.TryWrite(bytes.AsSpan(0, (int)hc.Header.ClusterSize), out _));
        var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await Qcow2Image.OpenAsync(new MemoryImage(bytes), new OpenContext(), default));
        Assert.Contains("'time travel' (bit 9)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task External_data_file_is_refused_clearly()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "-o", "data_file=data.raw", "ext.qcow2", "1M");
        var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await ImageOpener.OpenAsync(q.PathOf("ext.qcow2")));
        Assert.Contains("external data file", e.Message, StringComparison.Ordinal);
        Assert.Contains("not supported", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dirty_or_corrupt_image_still_reads_read_only_but_refuses_writing()
    {
        using var q = new QemuTools();
        var bytes = MakeImage(q, "d.qcow2");
        var expected = q.QemuRaw("d.qcow2");
        foreach (ulong bit in new[] { Qcow2Features.Dirty, Qcow2Features.Corrupt })
        {
            var copy = (byte[])bytes.Clone();
            BinaryPrimitives.WriteUInt64BigEndian(copy.AsSpan(72), bit);
            string path = q.PathOf($"flag{bit}.qcow2");
            await File.WriteAllBytesAsync(path, copy);
            await using (var image = await ImageOpener.OpenAsync(path))
            {
                QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image));
                Assert.False(image.Info.CanWrite);
            }

            await Assert.ThrowsAsync<ImageFormatException>(async () => await ImageOpener.OpenAsync(path, null, new OpenContext { Writable = true }));
        }
    }

    [Fact]
    public async Task Reading_a_remote_style_image_costs_few_metadata_requests()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "raw", "big.raw", "64M");
        q.Io("-f", "raw", "-c", "write -P 1 0 64M", "big.raw");
        q.Img("convert", "-O", "qcow2", "big.raw", "big.qcow2");
        var device = new MemoryImage(File.ReadAllBytes(q.PathOf("big.qcow2")));
        await using var image = await Qcow2Image.OpenAsync(device, new OpenContext(), default);
        int afterOpen = device.Reads;
        var buffer = new byte[1 << 20];
        for (long pos = 0; pos < image.Length; pos += buffer.Length)
        {
            await image.ReadAsync(pos, buffer);
        }

        // 64 MiB of contiguous data in 64 KiB clusters: one L2 table, one read per 1 MiB request.
        Assert.True(afterOpen <= 3, $"open took {afterOpen} reads");
        Assert.Equal(64 + 1, device.Reads - afterOpen);
    }

    [Fact]
    public async Task Backing_loops_and_missing_backing_files_are_errors()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "a.qcow2", "1M");
        q.Img("create", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", "b.qcow2");
        // Point a at b: a loop.
        q.Img("rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", "a.qcow2");
        await using (var image = await ImageOpener.OpenAsync(q.PathOf("b.qcow2")))
        {
            var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await image.ReadAsync(0, new byte[512]));
            Assert.Contains("loop", e.Message, StringComparison.Ordinal);
        }

        q.Img("create", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2", "-u", "orphan.qcow2", "1M");
        await using (var orphan = await ImageOpener.OpenAsync(q.PathOf("orphan.qcow2")))
        {
            await Assert.ThrowsAsync<SourceException>(async () => await orphan.ReadAsync(0, new byte[512]));
        }
    }
}
