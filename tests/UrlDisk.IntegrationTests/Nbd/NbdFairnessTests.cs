using UrlDisk.Nbd;
using UrlDisk.Nbd.Wire;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary>Clients that pipeline large reads and never read the replies must not hold the server up for anyone else.</summary>
public class NbdFairnessTests
{
    private const int MiB = 1 << 20;

    [Fact]
    public async Task Three_clients_that_never_read_replies_do_not_starve_a_fourth()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("d.raw");
        NbdTool.CreateSparseFile(image, 64 * MiB, (0, 4096));
        var device = await ImageOpener.OpenAsync(image, "raw", new OpenContext());

        // A reply timeout far beyond the test: only fairness can let the fourth client through.
        await using var server = new InProcessNbdServer(device, dir.File("s"), new NbdServerOptions
        {
            MaxConnections = 0,
            Persistent = true,
            ReadOnly = true,
            ReplyTimeout = TimeSpan.FromMinutes(10),
        });

        var stallers = new List<RawNbdClient>();
        try
        {
            for (int c = 0; c < 3; c++)
            {
                var staller = new RawNbdClient(await server.ConnectAsync());
                stallers.Add(staller);
                await staller.HandshakeAsync();
                await staller.SendAsync(ReadBatch(16, 32 * MiB));
            }

            // Let the servers' reads of the stallers' requests fill what they may hold.
            await Task.Delay(1000);

            await using var honest = new RawNbdClient(await server.ConnectAsync());
            await honest.HandshakeAsync();
            await honest.SendRequestAsync(NbdCommand.Read, 7, 0, 4096);
            var (h, data) = await honest.ReadSimpleReadReplyAsync(4096);
            Assert.Equal(new SimpleReplyHeader(NbdError.None, 7), h);
            Assert.Equal(File.ReadAllBytes(image)[..4096], data);
        }
        finally
        {
            foreach (var s in stallers)
            {
                await s.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_client_whose_replies_make_no_progress_is_dropped_after_the_reply_timeout()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("d.raw");
        NbdTool.CreateSparseFile(image, 64 * MiB, (0, 4096));
        var device = await ImageOpener.OpenAsync(image, "raw", new OpenContext());
        await using var server = new InProcessNbdServer(device, dir.File("s"), new NbdServerOptions
        {
            MaxConnections = 0,
            Persistent = true,
            ReadOnly = true,
            ReplyTimeout = TimeSpan.FromSeconds(1),
        });

        await using var staller = new RawNbdClient(await server.ConnectAsync());
        await staller.HandshakeAsync();
        await staller.SendAsync(ReadBatch(8, 32 * MiB));
        for (int i = 0; i < 300 && server.Server.ConnectionCount > 0; i++)
        {
            await Task.Delay(100);
        }

        Assert.Equal(0, server.Server.ConnectionCount);

        // What was queued before the cut may still arrive; then the stream ends.
        Assert.True(await staller.IsClosedByServerAsync(TimeSpan.FromSeconds(30)));
    }

    private static byte[] ReadBatch(int count, int length)
    {
        var batch = new byte[count * NbdRequest.CompactSize];
        for (int i = 0; i < count; i++)
        {
            new NbdRequest(NbdCommandFlags.None, NbdCommand.Read, (ulong)i, (ulong)(i % 2 * length), (uint)length)
                .Write(batch.AsSpan(i * NbdRequest.CompactSize));
        }

        return batch;
    }
}
