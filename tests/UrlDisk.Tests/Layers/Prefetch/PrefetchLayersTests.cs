using Microsoft.Extensions.Logging.Abstractions;
using UrlDisk.Layers.Prefetch;
using UrlDisk.Opening;
using UrlDisk.Sources;
using UrlDisk.Tests.Core;

namespace UrlDisk.Tests.Layers.Prefetch;

public sealed class PrefetchLayersTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("urldisk-prefetch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Pattern(int size) => Enumerable.Range(0, size).Select(i => (byte)((i * 31) ^ (i >> 9))).ToArray();

    [Fact]
    public async Task Reads_inside_the_plan_wait_for_its_fetch_and_make_no_request_of_their_own()
    {
        var data = Pattern(1 << 20);
        var gate = new TaskCompletionSource();
        var inner = new MemoryBlockDevice(data) { BeforeRead = (_, _) => gate.Task };
        await using var layer = new PrefetchLayer(inner, [new(0, 256 * 1024), new(512 * 1024, 256 * 1024)], workers: 2, NullLogger.Instance, _ => { });

        var buffers = Enumerable.Range(0, 64).Select(_ => new byte[2048]).ToArray();
        long OffsetOf(int i) => i < 32 ? i * 8192L : (512 * 1024) + ((i - 32) * 8192L);
        var reads = buffers.Select((b, i) => layer.ReadAsync(OffsetOf(i), b).AsTask()).ToArray();
        Assert.DoesNotContain(reads, r => r.IsCompleted);
        gate.SetResult();
        await Task.WhenAll(reads);

        Assert.Equal(2, inner.Reads);
        for (int i = 0; i < buffers.Length; i++)
        {
            Assert.Equal(data.AsSpan((int)OffsetOf(i), 2048).ToArray(), buffers[i]);
        }

        // Across the two pieces' gap, or outside the plan: straight to the device below.
        var across = new byte[4096];
        await layer.ReadAsync((256 * 1024) - 2048, across);
        Assert.Equal(data.AsSpan((256 * 1024) - 2048, 4096).ToArray(), across);
        Assert.Equal(3, inner.Reads);
    }

    [Fact]
    public async Task A_read_beyond_the_pieces_in_flight_does_not_wait_for_the_queue()
    {
        var data = Pattern(1 << 20);
        var gate = new TaskCompletionSource();
        var inner = new MemoryBlockDevice(data) { BeforeRead = (offset, _) => offset == 0 ? gate.Task : Task.CompletedTask };
        await using var layer = new PrefetchLayer(inner, [new(0, 4096), new(65536, 4096)], workers: 1, NullLogger.Instance, _ => { });

        // The one worker is stuck on the first piece; the second is queued, so its bytes come from below at once.
        var buf = new byte[4096];
        await layer.ReadAsync(65536, buf).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(data.AsSpan(65536, 4096).ToArray(), buf);
        gate.SetResult();
    }

    [Fact]
    public async Task A_failed_fetch_leaves_the_read_to_the_device_below()
    {
        var data = Pattern(1 << 16);
        int calls = 0;
        var inner = new MemoryBlockDevice(data) { BeforeRead = (_, _) => Interlocked.Increment(ref calls) == 1 ? Task.FromException(new SourceException("boom")) : Task.CompletedTask };
        await using var layer = new PrefetchLayer(inner, [new(0, 1 << 16)], workers: 1, NullLogger.Instance, _ => { });

        var buf = new byte[100];
        await layer.ReadAsync(10, buf);
        Assert.Equal(data.AsSpan(10, 100).ToArray(), buf);
    }

    [Fact]
    public async Task Recording_writes_the_reads_in_first_access_order_at_close()
    {
        string path = Path.Combine(_dir, "boot.profile");
        var data = Pattern(1 << 20);
        var notes = new List<string>();
        await using (var layer = new RecordingLayer(new MemoryBlockDevice(data), new string('b', 64), path, RecordingWindow.Default, notes.Add))
        {
            foreach (long offset in new long[] { 8192, 10240, 0, 8192, 500_000 })
            {
                await layer.ReadAsync(offset, new byte[2048]);
            }
        }

        Assert.True(BootProfile.TryRead(File.ReadAllBytes(path), out var profile, out string error, out _), error);
        Assert.Equal([new(8192, 4096), new(0, 2048), new(500_000, 2048)], profile!.Ranges);
        Assert.Equal(data.Length, profile.ImageLength);
        Assert.Contains(notes, n => n.StartsWith("recorded boot profile", StringComparison.Ordinal));
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public async Task Recording_ends_when_the_reader_is_idle_and_later_reads_are_not_in_the_profile()
    {
        string path = Path.Combine(_dir, "idle.profile");
        var written = new TaskCompletionSource();
        var window = new RecordingWindow(TimeSpan.FromMilliseconds(50), TimeSpan.FromMinutes(5));
        await using var layer = new RecordingLayer(new MemoryBlockDevice(Pattern(1 << 16)), new string('c', 64), path, window, _ => written.TrySetResult());
        await layer.ReadAsync(0, new byte[512]);
        await written.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await layer.ReadAsync(4096, new byte[512]);

        Assert.True(BootProfile.TryRead(File.ReadAllBytes(path), out var profile, out _, out _));
        Assert.Equal([new(0, 512)], profile!.Ranges);
    }

    [Fact]
    public async Task Directory_mode_records_the_first_open_and_prefetches_the_next_of_the_same_version_only()
    {
        var data = Pattern(1 << 20);
        var notes = new List<string>();
        var identity = new ContentIdentity("http://example.test/disk.raw", data.Length, "etag:\"1\"");

        await using (var first = await Request(notes).ApplyAsync(new IdentifiedDevice(data, identity), new OpenContext(), default))
        {
            Assert.IsType<RecordingLayer>(first);
            await first.ReadAsync(4096, new byte[8192]);
        }

        Assert.True(File.Exists(Path.Combine(_dir, identity.Key + ".profile")));

        var inner = new IdentifiedDevice(data, identity);
        await using (var second = await Request(notes).ApplyAsync(inner, new OpenContext(), default))
        {
            Assert.IsType<PrefetchLayer>(second);
            var buf = new byte[8192];
            await second.ReadAsync(4096, buf);
            Assert.Equal(data.AsSpan(4096, 8192).ToArray(), buf);
            Assert.Equal(1, inner.Reads);
        }

        var changed = identity with { Validators = "etag:\"2\"" };
        await using (var third = await Request(notes).ApplyAsync(new IdentifiedDevice(data, changed), new OpenContext(), default))
        {
            Assert.IsType<RecordingLayer>(third);
        }

        Assert.Equal(2, Directory.GetFiles(_dir, "*.profile").Length);
    }

    [Fact]
    public async Task A_named_profile_of_another_image_version_is_ignored_with_a_note_and_a_damaged_one_is_an_error()
    {
        var data = Pattern(1 << 16);
        var identity = new ContentIdentity("http://example.test/disk.raw", data.Length, "etag:\"1\"");
        string path = Path.Combine(_dir, "other.profile");
        File.WriteAllBytes(path, new BootProfile(new string('d', 64), data.Length, [new(0, 10)]).Encode());
        var notes = new List<string>();

        var device = await new BootProfileRequest { PrefetchFile = path, Note = notes.Add }.ApplyAsync(new IdentifiedDevice(data, identity), new OpenContext(), default);
        await device.DisposeAsync();
        Assert.IsType<IdentifiedDevice>(device);
        Assert.Contains(notes, n => n.Contains("another version of the image", StringComparison.Ordinal));

        File.WriteAllBytes(path, File.ReadAllBytes(path)[..60]);
        var e = await Assert.ThrowsAsync<OptionException>(async () => await new BootProfileRequest { PrefetchFile = path }.ApplyAsync(new IdentifiedDevice(data, identity), new OpenContext(), default));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated or damaged", e.Message);
    }

    private BootProfileRequest Request(List<string> notes) => new() { Directory = _dir, Note = notes.Add };

    private sealed class IdentifiedDevice(byte[] data, ContentIdentity identity) : BlockDevice, IHasContentIdentity
    {
        private readonly MemoryBlockDevice _memory = new(data);

        public ContentIdentity? ContentIdentity => identity;

        public int Reads => _memory.Reads;

        public override long Length => data.Length;

        public override BlockDeviceInfo Info { get; } = new() { Driver = "test", Details = new Dictionary<string, object?> { ["connections"] = 3 } };

        protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken) => _memory.ReadAsync(offset, buffer, cancellationToken);
    }
}
