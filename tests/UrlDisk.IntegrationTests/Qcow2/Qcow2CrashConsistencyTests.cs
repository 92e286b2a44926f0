using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;
using UrlDisk.Sources.File;

namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary>
/// Crash consistency tested as CrashMonkey and ALICE do: every write and flush a qcow2 workload makes to its
/// host file is recorded; a crash state is the file after every write up to a flush plus any subset of the
/// writes after it (the disk may persist them in any order, and a write may be torn at a sector boundary).
/// Each state must pass qemu-img check without corruption (leaks are allowed) and read back every guest write
/// that a flush acknowledged. States are sampled with a fixed seed, so the test is deterministic and bounded.
/// </summary>
public class Qcow2CrashConsistencyTests
{
    private const int StatesPerImage = 40;
    private const int SubsetsPerEpoch = 4;

    private sealed record HostOp(bool IsFlush, long Offset, byte[] Data, int GuestStep);

    /// <summary>An <see cref="IHostFile"/> that records every write and flush, tagged with the guest operation that caused it.</summary>
    private sealed class RecordingHostFile(IHostFile inner) : IHostFile
    {
        public List<HostOp> Ops { get; } = [];

        public int GuestStep { get; set; }

        public long Length => inner.Length;

        public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken) => inner.ReadAsync(offset, buffer, cancellationToken);

        public ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            lock (Ops)
            {
                Ops.Add(new HostOp(false, offset, data.ToArray(), GuestStep));
            }

            return inner.WriteAtAsync(offset, data, cancellationToken);
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            lock (Ops)
            {
                Ops.Add(new HostOp(true, 0, [], GuestStep));
            }

            return inner.FlushAsync(cancellationToken);
        }
    }

    /// <summary>What the guest may rely on after a flush: the contents then, and which bytes are defined (a discard leaves them undefined).</summary>
    private sealed record Acknowledged(int HostOpCount, int GuestStep, byte[] Contents, bool[] Defined);

    /// <summary>The guest bytes an operation changes (until a flush acknowledges it, they may read old or new).</summary>
    private sealed record Touched(int GuestStep, long Offset, int Length);

    /// <summary>
    /// Image options, what qemu-io writes first (';'-separated) and whether a snapshot then shares it. Each case
    /// exercises some of the ordered steps: 64-bit refcounts in 512-byte clusters create refcount blocks and grow
    /// the refcount table; qemu-io's small writes leave extended-L2 clusters partly allocated; a snapshot makes
    /// writes copy shared L2 tables and clusters.
    /// </summary>
    [Theory]
    [InlineData("cluster_size=512,refcount_bits=64", "", false)]
    [InlineData("cluster_size=4096,refcount_bits=2", "", false)]
    [InlineData("extended_l2=on,cluster_size=16k", "write -P 0x41 4k 2k;write -P 0x42 500k 8k;write -P 0x43 1100k 1k;write -P 0x44 2060k 3k", false)]
    [InlineData("compat=0.10,cluster_size=1024", "", false)]
    [InlineData("cluster_size=512", "write -P 0x51 0 1M;write -c -P 0x52 2M 64k", true)]
    public async Task Every_crash_state_is_free_of_corruption_and_keeps_acknowledged_writes(string options, string qemuIo, bool withSnapshot)
    {
        using var q = new QemuTools();
        const int size = 3 << 20;
        q.Img("create", "-f", "raw", "base.raw", size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        q.Io("-f", "raw", "-c", "write -P 0x3c 0 3M", "base.raw");
        string path = q.PathOf("top.qcow2");
        await Qcow2Creator.CreateAsync(path, size, Qcow2CreateOptions.Parse(options) with { BackingFile = "base.raw", BackingFormat = "raw" });
        foreach (var command in qemuIo.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            q.Io("-c", command, "top.qcow2");
        }

        if (withSnapshot)
        {
            q.Img("snapshot", "-c", "s1", "top.qcow2");
        }

        var initial = File.ReadAllBytes(path);
        var model = q.QemuRaw("top.qcow2");
        var defined = Enumerable.Repeat(true, size).ToArray();
        var acknowledged = new List<Acknowledged> { new(0, 0, (byte[])model.Clone(), (bool[])defined.Clone()) };
        var touched = new List<Touched>();
        var file = FileSource.Open(path, writable: true);
        var recorder = new RecordingHostFile(new FileHostFile(file));
        await using (var image = await Qcow2Image.OpenAsync(file, new OpenContext { Writable = true, CopyOnRead = true, BaseLocation = path }, recorder, default))
        {
            var rnd = new Random(options.Length);
            for (int step = 1; step <= 48; step++)
            {
                recorder.GuestStep = step;
                long offset = rnd.NextInt64(size - 1);
                int length = (int)Math.Min(size - offset, rnd.Next(1, 200_000));
                int kind = rnd.Next(8);
                switch (kind)
                {
                    case 0:
                        await image.WriteZeroesAsync(offset, length);
                        model.AsSpan((int)offset, length).Clear();
                        touched.Add(new(step, offset, length));
                        defined.AsSpan((int)offset, length).Fill(true);
                        break;
                    case 1:
                        await image.TrimAsync(offset, length);
                        defined.AsSpan((int)offset, length).Fill(false);
                        touched.Add(new(step, offset, length));
                        break;
                    case 2:
                        long cluster = offset / image.ClusterSize;
                        int n = (int)Math.Min(image.ClusterSize, size - (cluster * image.ClusterSize));
                        var packed = new byte[n];
                        rnd.NextBytes(packed.AsSpan(0, n / 2));
                        await image.WriteCompressedAsync(cluster, packed);
                        packed.CopyTo(model, cluster * image.ClusterSize);
                        defined.AsSpan((int)(cluster * image.ClusterSize), n).Fill(true);
                        touched.Add(new(step, cluster * image.ClusterSize, n));
                        break;
                    case 3:
                        await image.ReadAsync(offset, new byte[length]); // copy-on-read writes too
                        break;
                    default:
                        var data = new byte[length];
                        rnd.NextBytes(data);
                        await image.WriteAsync(offset, data);
                        data.CopyTo(model, offset);
                        defined.AsSpan((int)offset, length).Fill(true);
                        touched.Add(new(step, offset, length));
                        break;
                }

                if (step % 4 == 0)
                {
                    await image.FlushAsync();
                    acknowledged.Add(new(recorder.Ops.Count, step, (byte[])model.Clone(), (bool[])defined.Clone()));
                }
            }
        }

        recorder.GuestStep = int.MaxValue;
        acknowledged.Add(new(recorder.Ops.Count, int.MaxValue, model, defined));
        q.Img("check", "top.qcow2");

        var ops = recorder.Ops;
        var epochStarts = new List<int> { 0 };
        epochStarts.AddRange(Enumerable.Range(0, ops.Count).Where(i => ops[i].IsFlush).Select(i => i + 1));
        int EpochEnd(int start) => Enumerable.Range(start, ops.Count - start).FirstOrDefault(i => ops[i].IsFlush, ops.Count);
        var sampler = new Random(1234);
        var epochs = SampleEpochs(epochStarts.Distinct().ToList(), start => ops.Skip(start).Take(EpochEnd(start) - start).ToList(), StatesPerImage / SubsetsPerEpoch, sampler);
        int states = 0;
        foreach (int start in epochs)
        {
            int end = EpochEnd(start);
            var writes = Enumerable.Range(start, end - start).ToList();
            var basis = Apply(initial, ops.Take(start));
            foreach (var subset in Subsets(writes.Count, sampler))
            {
                var state = (byte[])basis.Clone();
                var chosen = new List<HostOp>();
                foreach (int w in subset)
                {
                    var op = ops[writes[w]];
                    // A chosen write of several sectors may be torn: only its first sectors reached the disk.
                    int sectors = (op.Data.Length + 511) / 512;
                    int keep = sectors > 1 && sampler.Next(4) == 0 ? sampler.Next(1, sectors) * 512 : op.Data.Length;
                    chosen.Add(op with { Data = op.Data[..keep] });
                }

                state = Apply(state, chosen);
                int lastStep = end < ops.Count ? ops[end].GuestStep : int.MaxValue;
                await VerifyAsync(q, state, acknowledged, touched, start, lastStep, $"state {states}: writes {start}..{end} of {ops.Count}, subset [{string.Join(',', subset)}]");
                states++;
            }
        }

        Assert.True(states >= 20, $"only {states} crash states");
    }

    /// <summary>
    /// Picks epochs (runs of writes between flushes) across the distinct shapes of their write sets (the sizes
    /// written, and whether the header is among them), round robin, so that rare steps such as growing the
    /// refcount table or copying an L2 table are covered as well as the common ones.
    /// </summary>
    private static List<int> SampleEpochs(List<int> starts, Func<int, List<HostOp>> writesOf, int count, Random rnd)
    {
        var groups = starts
            .GroupBy(start => string.Join(',', writesOf(start).Select(w => w.Offset < 512 ? $"header{w.Data.Length}" : $"{w.Data.Length}").Distinct().Order()))
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new Queue<int>(g.OrderBy(_ => rnd.Next())))
            .OrderBy(_ => rnd.Next())
            .ToList();
        var chosen = new List<int>();
        while (chosen.Count < count && groups.Any(g => g.Count > 0))
        {
            foreach (var g in groups.Where(g => g.Count > 0))
            {
                if (chosen.Count < count)
                {
                    chosen.Add(g.Dequeue());
                }
            }
        }

        chosen.Sort();
        return chosen;
    }

    /// <summary>The empty and the full subset, and random ones; every subset when there are few writes.</summary>
    private static IEnumerable<int[]> Subsets(int count, Random rnd)
    {
        if (count <= 2)
        {
            for (int mask = 0; mask < 1 << count; mask++)
            {
                yield return Enumerable.Range(0, count).Where(i => (mask & (1 << i)) != 0).ToArray();
            }

            yield break;
        }

        yield return Enumerable.Range(0, count).ToArray();
        for (int i = 1; i < SubsetsPerEpoch; i++)
        {
            yield return Enumerable.Range(0, count).Where(_ => rnd.Next(2) == 0).ToArray();
        }
    }

    private static byte[] Apply(byte[] start, IEnumerable<HostOp> ops)
    {
        var bytes = new MemoryStream();
        bytes.Write(start);
        foreach (var op in ops.Where(o => !o.IsFlush))
        {
            if (op.Offset > bytes.Length)
            {
                bytes.SetLength(op.Offset);
            }

            bytes.Position = op.Offset;
            bytes.Write(op.Data);
        }

        return bytes.ToArray();
    }

    /// <summary>qemu-img check finds no corruption, and bytes acknowledged by the last flush before the crash read back.</summary>
    private static async Task VerifyAsync(QemuTools q, byte[] state, List<Acknowledged> acknowledged, List<Touched> touched, int hostOpsDurable, int lastStep, string what)
    {
        await File.WriteAllBytesAsync(q.PathOf("crash.qcow2"), state);
        var (exit, stdout, stderr) = q.RunAll("qemu-img", "check", "crash.qcow2");
        Assert.True(exit is 0 or 3, $"{what}: qemu-img check exited {exit}: {stdout}{stderr}");

        // The last guest flush whose host writes are all in the state; guest operations after it (up to the
        // crash) were not acknowledged, so the bytes they touch may hold old or new contents.
        var ack = acknowledged.Last(a => a.HostOpCount <= hostOpsDurable);
        var settled = (bool[])ack.Defined.Clone();
        foreach (var t in touched.Where(t => t.GuestStep > ack.GuestStep && t.GuestStep <= lastStep))
        {
            settled.AsSpan((int)t.Offset, t.Length).Clear();
        }

        await using var image = await ImageOpener.OpenAsync(q.PathOf("crash.qcow2"));
        var read = await QemuTools.ReadAllAsync(image);
        for (int i = 0; i < read.Length; i++)
        {
            if (settled[i] && read[i] != ack.Contents[i])
            {
                Assert.Fail($"{what}: guest byte {i} acknowledged by the flush after step {ack.GuestStep} reads {read[i]}, not {ack.Contents[i]}");
            }
        }
    }
}
