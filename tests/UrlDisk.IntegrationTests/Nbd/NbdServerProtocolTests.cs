using UrlDisk.Nbd;
using UrlDisk.Nbd.Wire;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary>Requests no real client sends, spoken by hand to an in-process NbdServer over a Unix socket.</summary>
public class NbdServerProtocolTests
{
    private const int MiB = 1 << 20;

    private static async Task<(InProcessNbdServer Server, byte[] Content)> StartAsync(NbdTempDir dir, bool writable = false, NbdServerOptions? options = null, long size = 4 * MiB)
    {
        string image = dir.File("d.raw");
        var content = NbdTool.CreateSparseFile(image, size, (0, 8192), (MiB, 65536));
        var device = await ImageOpener.OpenAsync(image, "raw", new OpenContext { Writable = writable });
        return (new InProcessNbdServer(device, dir.File("s"), options ?? new NbdServerOptions { MaxConnections = 0, Persistent = true, ReadOnly = !writable }), content);
    }

    [Fact]
    public async Task Unknown_command_bad_flags_and_read_only_write_get_errors_and_the_connection_lives()
    {
        using var dir = new NbdTempDir();
        var (server, content) = await StartAsync(dir);
        await using var _ = server;
        await using var c = new RawNbdClient(await server.ConnectAsync());
        await c.HandshakeAsync();
        Assert.Equal((ulong)content.Length, c.Size);
        Assert.True((c.Flags & NbdTransmissionFlags.ReadOnly) != 0);

        await c.SendRequestAsync((NbdCommand)99, cookie: 1, 0, 512);
        Assert.Equal(new SimpleReplyHeader(NbdError.Invalid, 1), await c.ReadSimpleReplyAsync());

        await c.SendRequestAsync(NbdCommand.Read, cookie: 2, 0, 512, NbdCommandFlags.Fua | NbdCommandFlags.ReqOne);
        Assert.Equal(new SimpleReplyHeader(NbdError.Invalid, 2), await c.ReadSimpleReplyAsync());

        // The refused write's payload is consumed, so the next header is read in step.
        await c.SendRequestAsync(NbdCommand.Write, cookie: 3, 0, 4096, payload: new byte[4096]);
        Assert.Equal(new SimpleReplyHeader(NbdError.Perm, 3), await c.ReadSimpleReplyAsync());

        await c.SendRequestAsync(NbdCommand.Read, cookie: 4, (ulong)content.Length - 256, 512);
        Assert.Equal(new SimpleReplyHeader(NbdError.Invalid, 4), await c.ReadSimpleReplyAsync());

        await c.SendRequestAsync(NbdCommand.Read, cookie: 5, 0, 8192);
        var (h, data) = await c.ReadSimpleReadReplyAsync(8192);
        Assert.Equal(new SimpleReplyHeader(NbdError.None, 5), h);
        Assert.Equal(content[..8192], data);
    }

    [Fact]
    public async Task Oversized_write_is_refused_after_its_payload_is_skipped()
    {
        using var dir = new NbdTempDir();
        var (server, content) = await StartAsync(dir, writable: true, size: 64 * MiB);
        await using var _ = server;
        await using var c = new RawNbdClient(await server.ConnectAsync());
        await c.HandshakeAsync(structured: true);

        int tooLong = NbdServerOptions.MaxPayload + 4096;
        await c.SendRequestAsync(NbdCommand.Write, cookie: 7, 0, (uint)tooLong, payload: new byte[tooLong]);
        var (h, payload) = await c.ReadChunkAsync();
        Assert.Equal(NbdReplyChunkType.Error, h.Type);
        Assert.True(h.IsDone);
        Assert.Equal((uint)NbdError.Invalid, RawNbdClient.ErrorOf(payload));

        // Past the end is ENOSPC for writes.
        await c.SendRequestAsync(NbdCommand.Write, cookie: 9, (ulong)content.Length - 512, 1024, payload: new byte[1024]);
        (h, payload) = await c.ReadChunkAsync();
        Assert.Equal((uint)NbdError.NoSpace, RawNbdClient.ErrorOf(payload));

        // With structured replies a large READ is answered in chunks: data for the written part, a hole for the rest.
        await c.SendRequestAsync(NbdCommand.Read, cookie: 8, MiB - 65536, 2 * 65536);
        var chunks = new List<(StructuredReplyHeader, byte[])>();
        do
        {
            chunks.Add(await c.ReadChunkAsync());
        }
        while (!chunks[^1].Item1.IsDone);
        Assert.Equal([NbdReplyChunkType.OffsetHole, NbdReplyChunkType.OffsetData], chunks.Select(x => x.Item1.Type));
        Assert.True(OffsetHoleChunk.TryRead(chunks[0].Item2, out var hole));
        Assert.Equal(new OffsetHoleChunk(MiB - 65536, 65536), hole);
        Assert.Equal(content[MiB..(MiB + 65536)], chunks[1].Item2[8..]);

        // A small one is plain data, zeros included (a hole that size is not worth a lookup).
        await c.SendRequestAsync(NbdCommand.Read, cookie: 10, MiB - 4096, 8192);
        (h, payload) = await c.ReadChunkAsync();
        Assert.Equal(NbdReplyChunkType.OffsetData, h.Type);
        Assert.True(h.IsDone);
        Assert.Equal(content[(MiB - 4096)..(MiB + 4096)], payload[8..]);
        Assert.Equal(content, await File.ReadAllBytesAsync(dir.File("d.raw")));
    }

    [Fact]
    public async Task Unsupported_options_get_err_unsup_and_haggling_goes_on()
    {
        using var dir = new NbdTempDir();
        var (server, _) = await StartAsync(dir);
        await using var s = server;
        await using var c = new RawNbdClient(await server.ConnectAsync());
        await c.ReadGreetingAsync();
        await c.SendAsync([0, 0, 0, 1]);
        foreach (var option in new[] { NbdOption.StartTls, NbdOption.ExtendedHeaders, (NbdOption)4, (NbdOption)12345 })
        {
            await c.SendOptionAsync(option, [1, 2, 3]);
            var (h, msg) = await c.ReadOptionReplyAsync();
            Assert.Equal(option, h.Option);
            Assert.Equal(NbdOptionReplyType.ErrUnsup, h.Type);
            Assert.NotEmpty(msg);
        }

        await c.SendOptionAsync(NbdOption.List, [9]);
        Assert.Equal(NbdOptionReplyType.ErrInvalid, (await c.ReadOptionReplyAsync()).Header.Type);
        await c.SendOptionAsync(NbdOption.SetMetaContext, [0, 0, 0, 0, 0, 0, 0, 0]);
        Assert.Equal(NbdOptionReplyType.ErrInvalid, (await c.ReadOptionReplyAsync()).Header.Type); // needs structured replies first
        await c.SendOptionAsync(NbdOption.Go, [0, 0, 0, 9, 0]);
        Assert.Equal(NbdOptionReplyType.ErrInvalid, (await c.ReadOptionReplyAsync()).Header.Type);

        // Without NO_ZEROES the EXPORT_NAME reply carries its 124 zero bytes.
        await c.SendOptionAsync(NbdOption.ExportName, []);
        Assert.True(ExportNameReply.TryRead(await c.ReadAsync(ExportNameReply.PaddedSize), noZeroes: false, out var reply));
        Assert.Equal(4ul * MiB, reply.ExportSize);
        await c.SendRequestAsync(NbdCommand.Read, 1, 0, 16);
        Assert.Equal(NbdError.None, (await c.ReadSimpleReadReplyAsync(16)).Header.Error);
    }

    [Fact]
    public async Task Abort_is_acknowledged_and_the_connection_closes()
    {
        using var dir = new NbdTempDir();
        var (server, _) = await StartAsync(dir);
        await using var s = server;
        await using var c = new RawNbdClient(await server.ConnectAsync());
        await c.ReadGreetingAsync();
        await c.SendAsync([0, 0, 0, 3]);
        await c.SendOptionAsync(NbdOption.Abort, []);
        var (h, data) = await c.ReadOptionReplyAsync();
        Assert.Equal(new OptionReplyHeader(NbdOption.Abort, NbdOptionReplyType.Ack, 0), h);
        Assert.Empty(data);
        Assert.True(await c.IsClosedByServerAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Pipelined_requests_all_get_replies_and_disc_finishes_them()
    {
        using var dir = new NbdTempDir();
        var (server, content) = await StartAsync(dir);
        await using var s = server;
        await using var c = new RawNbdClient(await server.ConnectAsync());
        await c.HandshakeAsync();

        // All requests in one write (a Unix socket charges per message, so 300 small writes could fill it while
        // nobody reads replies), then DISC: the server must still answer every read before closing.
        const int count = 300;
        var batch = new byte[(count + 1) * NbdRequest.CompactSize];
        for (int i = 0; i < count; i++)
        {
            new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, (ulong)(1000 + i), (ulong)(i * 4096), 4096).Write(batch.AsSpan(i * NbdRequest.CompactSize));
        }

        new NbdRequest(NbdCommandFlags.None, NbdCommand.Disconnect, 0, 0, 0).Write(batch.AsSpan(count * NbdRequest.CompactSize));
        await c.SendAsync(batch);
        var seen = new HashSet<ulong>();
        for (int i = 0; i < count; i++)
        {
            var (h, data) = await c.ReadSimpleReadReplyAsync(4096);
            Assert.Equal(NbdError.None, h.Error);
            int index = (int)(h.Cookie - 1000);
            Assert.Equal(content[(index * 4096)..((index + 1) * 4096)], data);
            Assert.True(seen.Add(h.Cookie));
        }

        Assert.True(await c.IsClosedByServerAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Many_32_MiB_reads_in_flight_are_bounded_and_all_answered()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("big.raw");
        NbdTool.CreateSparseFile(image, 64 * MiB, (0, 64 * MiB));
        var device = await ImageOpener.OpenAsync(image, "raw", new OpenContext());
        await using var server = new InProcessNbdServer(device, dir.File("s"), new NbdServerOptions { MaxConnections = 0, Persistent = true, MaxInFlightBytes = 64 * MiB });
        await using var c = new RawNbdClient(await server.ConnectAsync());
        await c.HandshakeAsync();

        // 16 × 32 MiB asked for at once; the server holds at most 64 MiB of them and reads no more requests until replies drain.
        const int count = 16;
        var send = Task.Run(async () =>
        {
            for (int i = 0; i < count; i++)
            {
                await c.SendRequestAsync(NbdCommand.Read, (ulong)i, (ulong)(i % 2 * 32 * MiB), 32 * MiB);
            }
        });
        for (int i = 0; i < count; i++)
        {
            var (h, data) = await c.ReadSimpleReadReplyAsync(32 * MiB);
            Assert.Equal(NbdError.None, h.Error);
            Assert.Equal(32 * MiB, data.Length);
        }

        await send;
    }

    [Fact]
    public async Task Stop_lets_requests_in_flight_finish_then_flushes()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("d.raw");
        var content = NbdTool.CreateSparseFile(image, MiB, (0, MiB));
        var gated = new GatedDevice(await ImageOpener.OpenAsync(image, "raw", new OpenContext { Writable = true }));
        var server = new InProcessNbdServer(gated, dir.File("s"));
        await using var c = new RawNbdClient(await server.ConnectAsync());
        await c.HandshakeAsync();
        await c.SendRequestAsync(NbdCommand.Read, 42, 4096, 4096);
        await gated.ReadStarted.Task.WaitAsync(TimeSpan.FromSeconds(10));

        var stopping = server.DisposeAsync().AsTask();
        await Task.Delay(200);
        Assert.False(stopping.IsCompleted);
        gated.Release.SetResult();

        var (h, data) = await c.ReadSimpleReadReplyAsync(4096);
        Assert.Equal(new SimpleReplyHeader(NbdError.None, 42), h);
        Assert.Equal(content[4096..8192], data);
        await stopping.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(gated.Flushed);
        Assert.True(await c.IsClosedByServerAsync(TimeSpan.FromSeconds(5)));
    }

    /// <summary>Holds reads until the test releases them: a timing no real device offers on demand.</summary>
    private sealed class GatedDevice(IBlockDevice inner) : BlockDevice
    {
        public TaskCompletionSource ReadStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Flushed { get; private set; }

        public override long Length => inner.Length;

        public override BlockDeviceInfo Info => inner.Info;

        protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        {
            ReadStarted.TrySetResult();
            await Release.Task.WaitAsync(cancellationToken);
            await inner.ReadAsync(offset, buffer, cancellationToken);
        }

        public override ValueTask FlushAsync(CancellationToken cancellationToken = default)
        {
            Flushed = true;
            return inner.FlushAsync(cancellationToken);
        }

        protected override ValueTask DisposeCoreAsync() => inner.DisposeAsync();
    }
}
