using System.Net.Sockets;
using UrlDisk.Nbd;
using UrlDisk.Nbd.Wire;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary>Garbage, truncated and hostile handshakes and requests: only that connection may end, never the server.</summary>
public class NbdServerFuzzTests
{
    private const int MiB = 1 << 20;

    [Fact]
    public async Task Random_garbage_and_truncated_handshakes_do_not_stop_the_server()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("d.raw");
        NbdTool.CreateSparseFile(image, MiB, (0, 4096));
        var device = await ImageOpener.OpenAsync(image, "raw", new OpenContext());
        await using var server = new InProcessNbdServer(device, dir.File("s"), new NbdServerOptions
        {
            MaxConnections = 0,
            Persistent = true,
            ReadOnly = true,
            HandshakeTimeout = TimeSpan.FromSeconds(2),
        });

        // A client that keeps its connection open through all of this still gets answers at the end.
        await using var bystander = new RawNbdClient(await server.ConnectAsync());
        await bystander.HandshakeAsync(structured: true);

        var rng = new Random(20251125);
        for (int round = 0; round < 300; round++)
        {
            using var socket = await server.ConnectAsync();
            await using var stream = new NetworkStream(socket);
            var greeting = new byte[ServerGreeting.Size];
            await stream.ReadExactlyAsync(greeting);
            byte[] attack = MakeAttack(rng, round % 6);
            try
            {
                await stream.WriteAsync(attack);
                if (rng.Next(2) == 0)
                {
                    // Sometimes read what comes back for a moment; sometimes hang up at once.
                    using var cts = new CancellationTokenSource(20);
                    var sink = new byte[1024];
                    try
                    {
                        while (await stream.ReadAsync(sink, cts.Token) > 0)
                        {
                        }
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }
            }
            catch (IOException)
            {
                // The server may already have hung up on us: that is the point.
            }

            Assert.False(server.RunTask.IsCompleted, $"server stopped after round {round}");
        }

        // The old connection and new real clients still work.
        await bystander.SendRequestAsync(NbdCommand.Read, 77, 0, 4096);
        var (h, payload) = await bystander.ReadChunkAsync();
        Assert.Equal(77ul, h.Cookie);
        Assert.Equal(NbdReplyChunkType.OffsetData, h.Type);
        Assert.Equal(8 + 4096, payload.Length);
        var info = (await NbdTool.RunAsync("nbdinfo", ["--size", server.Uri])).EnsureSuccess();
        Assert.Equal(MiB.ToString(), info.Stdout.Trim());
    }

    [Fact]
    public async Task Hostile_lengths_and_silent_clients_are_dropped_without_allocation()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("d.raw");
        NbdTool.CreateSparseFile(image, MiB);
        var device = await ImageOpener.OpenAsync(image, "raw", new OpenContext());
        await using var server = new InProcessNbdServer(device, dir.File("s"), new NbdServerOptions
        {
            MaxConnections = 0,
            Persistent = true,
            HandshakeTimeout = TimeSpan.FromMilliseconds(500),
        });

        // An option that claims 4 GiB of data: closed, nothing allocated for it.
        await using (var c = new RawNbdClient(await server.ConnectAsync()))
        {
            await c.ReadGreetingAsync();
            await c.SendAsync([0, 0, 0, 3]);
            var h = new byte[OptionRequestHeader.Size];
            new OptionRequestHeader(NbdOption.Go, uint.MaxValue).Write(h);
            await c.SendAsync(h);
            Assert.True(await c.IsClosedByServerAsync(TimeSpan.FromSeconds(5)));
        }

        // Unknown client flags: closed.
        await using (var c = new RawNbdClient(await server.ConnectAsync()))
        {
            await c.ReadGreetingAsync();
            await c.SendAsync([0x80, 0, 0, 1]);
            Assert.True(await c.IsClosedByServerAsync(TimeSpan.FromSeconds(5)));
        }

        // A client that says nothing after the greeting is dropped when the handshake times out.
        await using (var c = new RawNbdClient(await server.ConnectAsync()))
        {
            await c.ReadGreetingAsync();
            Assert.True(await c.IsClosedByServerAsync(TimeSpan.FromSeconds(5)));
        }

        // A request with a bad magic in transmission: that connection ends.
        await using (var c = new RawNbdClient(await server.ConnectAsync()))
        {
            await c.HandshakeAsync();
            await c.SendAsync(new byte[NbdRequest.CompactSize]);
            Assert.True(await c.IsClosedByServerAsync(TimeSpan.FromSeconds(5)));
        }

        // EXPORT_NAME for an export that does not exist cannot be answered with an error: closed.
        await using (var c = new RawNbdClient(await server.ConnectAsync()))
        {
            await c.ReadGreetingAsync();
            await c.SendAsync([0, 0, 0, 3]);
            await c.SendOptionAsync(NbdOption.ExportName, "nope"u8.ToArray());
            Assert.True(await c.IsClosedByServerAsync(TimeSpan.FromSeconds(5)));
        }

        // A client that floods options and never reads the replies: cut when the handshake times out.
        var flooder = new RawNbdClient(await server.ConnectAsync());
        await flooder.ReadGreetingAsync();
        var flood = new MemoryStream();
        flood.Write([0, 0, 0, 3]);
        var list = new byte[OptionRequestHeader.Size];
        new OptionRequestHeader(NbdOption.List, 0).Write(list);
        for (int i = 0; i < 20000; i++)
        {
            flood.Write(list);
        }

        var sending = flooder.SendAsync(flood.ToArray());
        (await NbdTool.RunAsync("nbdinfo", ["--size", server.Uri])).EnsureSuccess();
        Assert.Equal(0, WaitForNoConnections(server.Server));
        await flooder.DisposeAsync();

        // Whether the flood's last bytes were still queued when the server hung up depends on buffer sizes; either is fine.
        await Record.ExceptionAsync(() => sending.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    private static int WaitForNoConnections(NbdServer server)
    {
        for (int i = 0; i < 100 && server.ConnectionCount > 0; i++)
        {
            Thread.Sleep(50);
        }

        return server.ConnectionCount;
    }

    /// <summary>Bytes a client sends after the greeting, from pure noise to almost-valid messages.</summary>
    private static byte[] MakeAttack(Random rng, int kind)
    {
        var ms = new MemoryStream();
        var hello = new byte[4];
        new ClientHello(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes).Write(hello);
        switch (kind)
        {
            case 0: // pure noise
                ms.Write(RandomBytes(rng, rng.Next(0, 300)));
                break;
            case 1: // valid flags, then a truncated option header
                ms.Write(hello);
                var h = new byte[OptionRequestHeader.Size];
                new OptionRequestHeader((NbdOption)rng.Next(0, 14), (uint)rng.Next(0, 100)).Write(h);
                ms.Write(h.AsSpan(0, rng.Next(0, h.Length)));
                break;
            case 2: // valid option headers with random (often malformed) data
                ms.Write(hello);
                for (int i = 0; i < rng.Next(1, 5); i++)
                {
                    var data = RandomBytes(rng, rng.Next(0, 64));
                    var oh = new byte[OptionRequestHeader.Size];
                    new OptionRequestHeader((NbdOption)rng.Next(1, 13), (uint)data.Length).Write(oh);
                    ms.Write(oh);
                    ms.Write(data);
                }

                break;
            case 3: // structured replies and meta contexts with lying lengths inside
                ms.Write(hello);
                var sr = new byte[OptionRequestHeader.Size];
                new OptionRequestHeader(NbdOption.StructuredReply, 0).Write(sr);
                ms.Write(sr);
                var meta = RandomBytes(rng, rng.Next(8, 40));
                meta[0] = 0xff;
                var mh = new byte[OptionRequestHeader.Size];
                new OptionRequestHeader(NbdOption.SetMetaContext, (uint)meta.Length).Write(mh);
                ms.Write(mh);
                ms.Write(meta);
                break;
            case 4: // full handshake, then random requests (some valid, some not), then noise
                ms.Write(hello);
                var go = new ExportInfoRequest("", []);
                var gd = new byte[go.EncodedLength];
                go.Write(gd);
                var gh = new byte[OptionRequestHeader.Size];
                new OptionRequestHeader(NbdOption.Go, (uint)gd.Length).Write(gh);
                ms.Write(gh);
                ms.Write(gd);
                for (int i = 0; i < rng.Next(1, 6); i++)
                {
                    var r = new byte[NbdRequest.CompactSize];
                    new NbdRequest((NbdCommandFlags)rng.Next(0, 64), (NbdCommand)rng.Next(0, 10), (ulong)i, (ulong)rng.NextInt64(0, 2 * MiB), (uint)rng.Next(0, 70000)).Write(r);
                    ms.Write(r);
                }

                ms.Write(RandomBytes(rng, rng.Next(0, 50)));
                break;
            default: // a write header that promises much more data than follows
                ms.Write(hello);
                var g2 = new ExportInfoRequest("", []);
                var g2d = new byte[g2.EncodedLength];
                g2.Write(g2d);
                var g2h = new byte[OptionRequestHeader.Size];
                new OptionRequestHeader(NbdOption.Go, (uint)g2d.Length).Write(g2h);
                ms.Write(g2h);
                ms.Write(g2d);
                var w = new byte[NbdRequest.CompactSize];
                new NbdRequest(NbdCommandFlags.None, NbdCommand.Write, 1, 0, uint.MaxValue).Write(w);
                ms.Write(w);
                ms.Write(RandomBytes(rng, rng.Next(0, 4096)));
                break;
        }

        return ms.ToArray();
    }

    private static byte[] RandomBytes(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }
}
