using System.Buffers.Binary;
using System.Net.Sockets;
using UrlDisk.Nbd.Wire;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary>A hand-driven NBD client built on the wire codecs, for requests no real client will send.</summary>
internal sealed class RawNbdClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;

    public RawNbdClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public ulong Size { get; private set; }

    public NbdTransmissionFlags Flags { get; private set; }

    public async Task<ServerGreeting> ReadGreetingAsync()
    {
        var b = await ReadAsync(ServerGreeting.Size);
        Assert.True(ServerGreeting.TryRead(b, out var g));
        return g;
    }

    public Task SendAsync(byte[] bytes) => _stream.WriteAsync(bytes).AsTask();

    public async Task<byte[]> ReadAsync(int n)
    {
        var b = new byte[n];
        await _stream.ReadExactlyAsync(b).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        return b;
    }

    /// <summary>True when the server closed the connection (reads end) within the timeout.</summary>
    public async Task<bool> IsClosedByServerAsync(TimeSpan timeout)
    {
        var b = new byte[4096];
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                if (await _stream.ReadAsync(b, cts.Token) == 0)
                {
                    return true;
                }
            }
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public async Task SendOptionAsync(NbdOption option, byte[] data)
    {
        var b = new byte[OptionRequestHeader.Size + data.Length];
        new OptionRequestHeader(option, (uint)data.Length).Write(b);
        data.CopyTo(b, OptionRequestHeader.Size);
        await SendAsync(b);
    }

    public async Task<(OptionReplyHeader Header, byte[] Data)> ReadOptionReplyAsync()
    {
        Assert.True(OptionReplyHeader.TryRead(await ReadAsync(OptionReplyHeader.Size), out var h));
        return (h, await ReadAsync((int)h.Length));
    }

    /// <summary>Greeting, flags, optionally STRUCTURED_REPLY and base:allocation, then GO.</summary>
    public async Task HandshakeAsync(bool structured = false, string exportName = "")
    {
        await ReadGreetingAsync();
        var hello = new byte[4];
        new ClientHello(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes).Write(hello);
        await SendAsync(hello);
        if (structured)
        {
            await SendOptionAsync(NbdOption.StructuredReply, []);
            Assert.Equal(NbdOptionReplyType.Ack, (await ReadOptionReplyAsync()).Header.Type);
        }

        await GoAsync(exportName);
    }

    public async Task GoAsync(string exportName = "")
    {
        var go = new ExportInfoRequest(exportName, [NbdInfoType.BlockSize]);
        var data = new byte[go.EncodedLength];
        go.Write(data);
        await SendOptionAsync(NbdOption.Go, data);
        while (true)
        {
            var (h, d) = await ReadOptionReplyAsync();
            Assert.False(h.IsError, $"GO failed: {h.Type}");
            if (h.Type == NbdOptionReplyType.Ack)
            {
                return;
            }

            if (InfoExport.TryRead(d, out var e))
            {
                Size = e.ExportSize;
                Flags = e.Flags;
            }
        }
    }

    public Task SendRequestAsync(NbdCommand command, ulong cookie, ulong offset, uint length, NbdCommandFlags flags = NbdCommandFlags.None, byte[]? payload = null)
    {
        var b = new byte[NbdRequest.CompactSize + (payload?.Length ?? 0)];
        new NbdRequest(flags, command, cookie, offset, length).Write(b);
        payload?.CopyTo(b, NbdRequest.CompactSize);
        return SendAsync(b);
    }

    public async Task<SimpleReplyHeader> ReadSimpleReplyAsync()
    {
        Assert.True(SimpleReplyHeader.TryRead(await ReadAsync(SimpleReplyHeader.Size), out var r));
        return r;
    }

    public async Task<(StructuredReplyHeader Header, byte[] Payload)> ReadChunkAsync()
    {
        Assert.True(StructuredReplyHeader.TryRead(await ReadAsync(StructuredReplyHeader.Size), out var h));
        return (h, await ReadAsync((int)h.Length));
    }

    /// <summary>Reads the next simple reply's magic-checked header, and its data when it is a successful read of <paramref name="readLength"/>.</summary>
    public async Task<(SimpleReplyHeader Header, byte[] Data)> ReadSimpleReadReplyAsync(int readLength)
    {
        var h = await ReadSimpleReplyAsync();
        return (h, h.Error == NbdError.None ? await ReadAsync(readLength) : []);
    }

    public static uint ErrorOf(byte[] errorChunkPayload) => BinaryPrimitives.ReadUInt32BigEndian(errorChunkPayload);

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _socket.Dispose();
    }
}
