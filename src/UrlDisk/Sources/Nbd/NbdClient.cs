using System.Buffers.Binary;
using System.Net.Sockets;
using UrlDisk.Nbd.Wire;

namespace UrlDisk.Sources.Nbd;

/// <summary>
/// One connection to an NBD server, as a client: the fixed newstyle handshake (structured replies and
/// <c>base:allocation</c> when the server has them, NBD_OPT_GO, NBD_OPT_EXPORT_NAME for servers without GO), then
/// READ and BLOCK_STATUS one request at a time. Wire messages are the server's codecs in <c>Nbd/Wire</c>.
/// </summary>
internal sealed partial class NbdClient : IAsyncDisposable
{
    /// <summary>Largest option reply accepted during the handshake; a longer one is not a server we understand.</summary>
    private const int MaxOptionReply = 1 << 20;

    private readonly Socket _socket;
    private Stream _stream;
    private readonly byte[] _header = new byte[32];
    private ulong _cookie;

    private NbdClient(Socket socket, NbdAddress address)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        Address = address;
    }

    public NbdAddress Address { get; }

    public ulong Size { get; private set; }

    public NbdTransmissionFlags Flags { get; private set; }

    public uint MinimumBlockSize { get; private set; } = 1;

    public uint PreferredBlockSize { get; private set; } = 4096;

    public uint MaximumBlockSize { get; private set; } = 32 << 20;

    public bool StructuredReplies { get; private set; }

    /// <summary>The id the server gave <c>base:allocation</c>, or null when it has no block status.</summary>
    public uint? BaseAllocationId { get; private set; }

    private bool _noZeroes;

    /// <summary>Connects and negotiates the export; the connection is ready for requests.</summary>
    public static async Task<NbdClient> ConnectAsync(NbdAddress address, CancellationToken cancellationToken)
    {
        var client = new NbdClient(await address.ConnectAsync(cancellationToken).ConfigureAwait(false), address);
        try
        {
            await client.GreetAsync(cancellationToken).ConfigureAwait(false);
            await client.StartTlsIfAskedAsync(cancellationToken).ConfigureAwait(false);
            await client.NegotiateAsync(cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>What one export of a server says about itself (qemu-nbd --list); block sizes are 0 when it did not send them.</summary>
    internal sealed record ExportListing(string Name, string Description, ulong Size, NbdTransmissionFlags Flags,
        uint MinimumBlockSize, uint PreferredBlockSize, uint MaximumBlockSize, IReadOnlyList<string> MetaContexts);

    /// <summary>NBD_OPT_LIST, then NBD_OPT_INFO and NBD_OPT_LIST_META_CONTEXT for each export; ends with NBD_OPT_ABORT.</summary>
    public static async Task<IReadOnlyList<ExportListing>> ListAsync(NbdAddress address, CancellationToken cancellationToken)
    {
        await using var client = new NbdClient(await address.ConnectAsync(cancellationToken).ConfigureAwait(false), address);
        await client.GreetAsync(cancellationToken).ConfigureAwait(false);
        await client.StartTlsIfAskedAsync(cancellationToken).ConfigureAwait(false);
        var names = new List<(string Name, string Description)>();
        await client.SendOptionAsync(NbdOption.List, [], cancellationToken).ConfigureAwait(false);
        while (true)
        {
            var (header, data) = await client.ReadOptionReplyAsync(NbdOption.List, cancellationToken).ConfigureAwait(false);
            if (header.Type == NbdOptionReplyType.Ack)
            {
                break;
            }

            if (header.Type != NbdOptionReplyType.Server || !ServerEntry.TryRead(data, out var entry))
            {
                throw new SourceException($"nbd: {address.Display}: malformed NBD_OPT_LIST reply");
            }

            names.Add((entry.ExportName, entry.Description));
        }

        bool structured = await client.TryOptionAckAsync(NbdOption.StructuredReply, [], cancellationToken).ConfigureAwait(false);
        var listings = new List<ExportListing>();
        foreach (var (name, description) in names)
        {
            var request = new ExportInfoRequest(name, [NbdInfoType.BlockSize, NbdInfoType.Description]);
            var bytes = new byte[request.EncodedLength];
            request.Write(bytes);
            await client.SendOptionAsync(NbdOption.Info, bytes, cancellationToken).ConfigureAwait(false);
            string text = description;
            var sizes = (Min: 0u, Preferred: 0u, Max: 0u); // zero: the server did not say
            ulong size = 0;
            var flags = NbdTransmissionFlags.None;
            while (true)
            {
                var (header, data) = await client.ReadOptionReplyAsync(NbdOption.Info, cancellationToken).ConfigureAwait(false);
                if (header.Type == NbdOptionReplyType.Ack)
                {
                    break;
                }

                if (header.Type == NbdOptionReplyType.Info && InfoExport.TryRead(data, out var export))
                {
                    (size, flags) = (export.ExportSize, export.Flags);
                }
                else if (header.Type == NbdOptionReplyType.Info && InfoBlockSize.TryRead(data, out var bs))
                {
                    sizes = (bs.Minimum, bs.Preferred, bs.Maximum);
                }
                else if (header.Type == NbdOptionReplyType.Info && InfoText.TryRead(data, out var t) && t.Type == NbdInfoType.Description)
                {
                    text = t.Text;
                }
            }

            var contexts = new List<string>();
            if (structured)
            {
                var meta = new MetaContextRequest(name, []);
                var metaBytes = new byte[meta.EncodedLength];
                meta.Write(metaBytes);
                await client.SendOptionAsync(NbdOption.ListMetaContext, metaBytes, cancellationToken).ConfigureAwait(false);
                while (true)
                {
                    var (header, data) = await client.ReadOptionReplyAsync(NbdOption.ListMetaContext, cancellationToken, throwOnError: false).ConfigureAwait(false);
                    if (header.Type == NbdOptionReplyType.Ack || header.IsError)
                    {
                        break;
                    }

                    if (MetaContextEntry.TryRead(data, out var m))
                    {
                        contexts.Add(m.Name);
                    }
                }
            }

            listings.Add(new ExportListing(name, text, size, flags, sizes.Min, sizes.Preferred, sizes.Max, contexts));
        }

        await client.SendOptionAsync(NbdOption.Abort, [], cancellationToken).ConfigureAwait(false);
        return listings;
    }

    private async Task GreetAsync(CancellationToken cancellationToken)
    {
        var greeting = new byte[ServerGreeting.Size];
        await ReadExactlyAsync(greeting, cancellationToken).ConfigureAwait(false);
        ServerGreeting value;
        try
        {
            ServerGreeting.TryRead(greeting, out value);
        }
        catch (NbdProtocolException e)
        {
            throw new SourceException($"nbd: {Address.Display} is not an NBD server or speaks only the oldstyle protocol ({e.Message})");
        }

        if ((value.Flags & NbdHandshakeFlags.FixedNewstyle) == 0)
        {
            throw new SourceException($"nbd: {Address.Display} does not speak the fixed newstyle handshake");
        }

        _noZeroes = (value.Flags & NbdHandshakeFlags.NoZeroes) != 0;
        var hello = new byte[ClientHello.Size];
        new ClientHello(NbdClientFlags.FixedNewstyle | (_noZeroes ? NbdClientFlags.NoZeroes : 0)).Write(hello);
        await _stream.WriteAsync(hello, cancellationToken).ConfigureAwait(false);
    }

    private async Task NegotiateAsync(CancellationToken cancellationToken)
    {
        string export = Address.ExportName;
        StructuredReplies = await TryOptionAckAsync(NbdOption.StructuredReply, [], cancellationToken).ConfigureAwait(false);
        if (StructuredReplies)
        {
            var meta = new MetaContextRequest(export, [UrlDisk.Nbd.NbdExport.BaseAllocation]);
            var bytes = new byte[meta.EncodedLength];
            meta.Write(bytes);
            await SendOptionAsync(NbdOption.SetMetaContext, bytes, cancellationToken).ConfigureAwait(false);
            while (true)
            {
                var (header, data) = await ReadOptionReplyAsync(NbdOption.SetMetaContext, cancellationToken, throwOnError: false).ConfigureAwait(false);
                if (header.Type == NbdOptionReplyType.Ack || header.IsError)
                {
                    break;
                }

                if (MetaContextEntry.TryRead(data, out var entry) && entry.Name == UrlDisk.Nbd.NbdExport.BaseAllocation)
                {
                    BaseAllocationId = entry.ContextId;
                }
            }
        }

        var go = new ExportInfoRequest(export, [NbdInfoType.BlockSize]);
        var goBytes = new byte[go.EncodedLength];
        go.Write(goBytes);
        await SendOptionAsync(NbdOption.Go, goBytes, cancellationToken).ConfigureAwait(false);
        bool haveExport = false;
        while (true)
        {
            var (header, data) = await ReadOptionReplyAsync(NbdOption.Go, cancellationToken, throwOnError: false).ConfigureAwait(false);
            if (header.Type == NbdOptionReplyType.ErrUnsup)
            {
                await ExportNameAsync(cancellationToken).ConfigureAwait(false);
                return;
            }

            if (header.IsError)
            {
                throw OptionError(NbdOption.Go, header, data);
            }

            if (header.Type == NbdOptionReplyType.Ack)
            {
                break;
            }

            if (header.Type == NbdOptionReplyType.Info && InfoExport.TryRead(data, out var info))
            {
                (Size, Flags, haveExport) = (info.ExportSize, info.Flags, true);
            }
            else if (header.Type == NbdOptionReplyType.Info && InfoBlockSize.TryRead(data, out var sizes))
            {
                (MinimumBlockSize, PreferredBlockSize, MaximumBlockSize) = (Math.Max(1, sizes.Minimum), sizes.Preferred, Math.Max(sizes.Minimum, sizes.Maximum));
            }
        }

        if (!haveExport)
        {
            throw new SourceException($"nbd: {Address.Display}: the server acknowledged NBD_OPT_GO without describing the export");
        }
    }

    /// <summary>Servers without NBD_OPT_GO: NBD_OPT_EXPORT_NAME has no error reply; a wrong name closes the connection.</summary>
    private async Task ExportNameAsync(CancellationToken cancellationToken)
    {
        var name = new byte[NbdStrings.ByteCount(Address.ExportName)];
        NbdStrings.Encode(Address.ExportName, name);
        await SendOptionAsync(NbdOption.ExportName, name, cancellationToken).ConfigureAwait(false);
        var reply = new byte[_noZeroes ? ExportNameReply.ShortSize : ExportNameReply.PaddedSize];
        await ReadExactlyAsync(reply, cancellationToken).ConfigureAwait(false);
        ExportNameReply.TryRead(reply, _noZeroes, out var value);
        (Size, Flags) = (value.ExportSize, value.Flags);

        // Structured replies and contexts negotiated before are valid only with GO: without it, stay simple.
        StructuredReplies = false;
        BaseAllocationId = null;
    }

    private async Task<bool> TryOptionAckAsync(NbdOption option, byte[] data, CancellationToken cancellationToken)
    {
        await SendOptionAsync(option, data, cancellationToken).ConfigureAwait(false);
        var (header, _) = await ReadOptionReplyAsync(option, cancellationToken, throwOnError: false).ConfigureAwait(false);
        if (header.Type == NbdOptionReplyType.ErrTlsReqd)
        {
            throw new SourceException($"nbd: {Address.Display} requires TLS; use nbds:// (or nbds+unix://) or the tls-* options");
        }

        return header.Type == NbdOptionReplyType.Ack;
    }

    private async Task SendOptionAsync(NbdOption option, byte[] data, CancellationToken cancellationToken)
    {
        var bytes = new byte[OptionRequestHeader.Size + data.Length];
        new OptionRequestHeader(option, (uint)data.Length).Write(bytes);
        data.CopyTo(bytes, OptionRequestHeader.Size);
        await _stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
    }

    private async Task<(OptionReplyHeader Header, byte[] Data)> ReadOptionReplyAsync(NbdOption option, CancellationToken cancellationToken, bool throwOnError = true)
    {
        await ReadExactlyAsync(_header.AsMemory(0, OptionReplyHeader.Size), cancellationToken).ConfigureAwait(false);
        OptionReplyHeader.TryRead(_header, out var header);
        if (header.Option != option || header.Length > MaxOptionReply)
        {
            throw new SourceException($"nbd: {Address.Display}: unexpected reply to option {(uint)option} (for option {(uint)header.Option}, {header.Length} bytes)");
        }

        _closeHint = "";
        var data = new byte[header.Length];
        await ReadExactlyAsync(data, cancellationToken).ConfigureAwait(false);
        if (header.IsError && throwOnError)
        {
            throw OptionError(option, header, data);
        }

        return (header, data);
    }

    private SourceException OptionError(NbdOption option, OptionReplyHeader header, byte[] data)
    {
        string detail = NbdStrings.TryDecode(data, out string text) && text.Length > 0 ? $": {text}" : "";
        string what = header.Type switch
        {
            NbdOptionReplyType.ErrUnknown => $"the server has no export named '{Address.ExportName}'",
            NbdOptionReplyType.ErrTlsReqd => "the server requires TLS; use nbds:// (or nbds+unix://) or the tls-* options",
            NbdOptionReplyType.ErrPolicy => "the server refused by its policy",
            NbdOptionReplyType.ErrShutdown => "the server is shutting down",
            _ => $"option {(uint)option} failed (error 0x{(uint)header.Type:x})",
        };
        return new SourceException($"nbd: {Address.Display}: {what}{detail}");
    }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/> (at most <see cref="MaximumBlockSize"/>).</summary>
    public async Task ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        ulong cookie = await SendRequestAsync(NbdCommand.Read, NbdCommandFlags.None, offset, buffer.Length, cancellationToken).ConfigureAwait(false);
        if (!await ReadReplyMagicIsStructuredAsync(cancellationToken).ConfigureAwait(false))
        {
            await ReadSimpleReplyAsync(cookie, "READ", offset, cancellationToken).ConfigureAwait(false);
            await ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        string? error = null;
        while (true)
        {
            var chunk = await ReadChunkHeaderAsync(cookie, cancellationToken).ConfigureAwait(false);
            switch (chunk.Type)
            {
                case NbdReplyChunkType.OffsetData:
                    {
                        if (chunk.Length < OffsetDataChunk.Size)
                        {
                            throw Broken("an OFFSET_DATA chunk shorter than its offset");
                        }

                        await ReadExactlyAsync(_header.AsMemory(0, OffsetDataChunk.Size), cancellationToken).ConfigureAwait(false);
                        long at = (long)BinaryPrimitives.ReadUInt64BigEndian(_header) - offset;
                        long n = chunk.Length - OffsetDataChunk.Size;
                        if (at < 0 || at + n > buffer.Length)
                        {
                            throw Broken("an OFFSET_DATA chunk outside the range asked for");
                        }

                        await ReadExactlyAsync(buffer.Slice((int)at, (int)n), cancellationToken).ConfigureAwait(false);
                        break;
                    }

                case NbdReplyChunkType.OffsetHole:
                    {
                        var payload = await ReadPayloadAsync(chunk, cancellationToken).ConfigureAwait(false);
                        if (!OffsetHoleChunk.TryRead(payload, out var hole) || payload.Length != OffsetHoleChunk.Size)
                        {
                            throw Broken("a malformed OFFSET_HOLE chunk");
                        }

                        long at = (long)hole.Offset - offset;
                        if (at < 0 || at + hole.HoleSize > buffer.Length)
                        {
                            throw Broken("an OFFSET_HOLE chunk outside the range asked for");
                        }

                        buffer.Span.Slice((int)at, (int)hole.HoleSize).Clear();
                        break;
                    }

                default:
                    error ??= await ReadOtherChunkAsync(chunk, cancellationToken).ConfigureAwait(false);
                    break;
            }

            if (chunk.IsDone)
            {
                break;
            }

            if (!await ReadReplyMagicIsStructuredAsync(cancellationToken).ConfigureAwait(false))
            {
                throw Broken("a simple reply in the middle of a structured one");
            }
        }

        if (error is not null)
        {
            throw new SourceException($"nbd: {Address.Display}: READ at {offset} failed: {error}");
        }
    }

    /// <summary>The server's <c>base:allocation</c> for a range: contiguous extents from <paramref name="offset"/>, perhaps fewer than asked.</summary>
    public async Task<IReadOnlyList<Extent>> BlockStatusAsync(long offset, long length, CancellationToken cancellationToken)
    {
        uint asked = (uint)Math.Min(length, uint.MaxValue - 511);
        ulong cookie = await SendRequestAsync(NbdCommand.BlockStatus, NbdCommandFlags.None, offset, asked, cancellationToken).ConfigureAwait(false);
        var extents = new List<Extent>();
        string? error = null;
        bool structured = await ReadReplyMagicIsStructuredAsync(cancellationToken).ConfigureAwait(false);
        if (!structured)
        {
            await ReadSimpleReplyAsync(cookie, "BLOCK_STATUS", offset, cancellationToken).ConfigureAwait(false);
            throw Broken("a simple reply to BLOCK_STATUS");
        }

        while (true)
        {
            var chunk = await ReadChunkHeaderAsync(cookie, cancellationToken).ConfigureAwait(false);
            if (chunk.Type == NbdReplyChunkType.BlockStatus)
            {
                var payload = await ReadPayloadAsync(chunk, cancellationToken).ConfigureAwait(false);
                if (payload.Length < BlockStatusDescriptor.ContextIdSize || (payload.Length - BlockStatusDescriptor.ContextIdSize) % BlockStatusDescriptor.Size != 0)
                {
                    throw Broken("a malformed BLOCK_STATUS chunk");
                }

                if (BinaryPrimitives.ReadUInt32BigEndian(payload) == BaseAllocationId && extents.Count == 0)
                {
                    long at = offset;
                    long end = offset + length;
                    for (int i = BlockStatusDescriptor.ContextIdSize; i < payload.Length && at < end; i += BlockStatusDescriptor.Size)
                    {
                        BlockStatusDescriptor.TryRead(payload.AsSpan(i), out var d);
                        if (d.Length == 0)
                        {
                            break;
                        }

                        long n = Math.Min(d.Length, end - at);
                        var flags = ((d.State & NbdAllocationState.Hole) != 0 ? ExtentFlags.Hole : 0) | ((d.State & NbdAllocationState.Zero) != 0 ? ExtentFlags.Zero : 0);
                        extents.Add(new Extent(at, n, flags));
                        at += n;
                    }
                }
            }
            else
            {
                error ??= await ReadOtherChunkAsync(chunk, cancellationToken).ConfigureAwait(false);
            }

            if (chunk.IsDone)
            {
                break;
            }

            if (!await ReadReplyMagicIsStructuredAsync(cancellationToken).ConfigureAwait(false))
            {
                throw Broken("a simple reply in the middle of a structured one");
            }
        }

        if (error is not null)
        {
            throw new SourceException($"nbd: {Address.Display}: BLOCK_STATUS at {offset} failed: {error}");
        }

        return extents;
    }

    /// <summary>Says goodbye (NBD_CMD_DISC) so the server knows the client left on purpose.</summary>
    public async Task DisconnectAsync(CancellationToken cancellationToken)
    {
        var bytes = new byte[NbdRequest.CompactSize];
        new NbdRequest(NbdCommandFlags.None, NbdCommand.Disconnect, ++_cookie, 0, 0).Write(bytes);
        await _stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ulong> SendRequestAsync(NbdCommand command, NbdCommandFlags flags, long offset, long length, CancellationToken cancellationToken)
    {
        ulong cookie = ++_cookie;
        new NbdRequest(flags, command, cookie, (ulong)offset, (uint)length).Write(_header);
        await _stream.WriteAsync(_header.AsMemory(0, NbdRequest.CompactSize), cancellationToken).ConfigureAwait(false);
        return cookie;
    }

    /// <summary>Reads a reply's magic into the header buffer: true for a structured chunk, false for a simple reply.</summary>
    private async Task<bool> ReadReplyMagicIsStructuredAsync(CancellationToken cancellationToken)
    {
        await ReadExactlyAsync(_header.AsMemory(0, 4), cancellationToken).ConfigureAwait(false);
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(_header);
        return magic switch
        {
            NbdMagic.StructuredReply when StructuredReplies => true,
            NbdMagic.SimpleReply => false,
            _ => throw Broken($"a reply with bad magic 0x{magic:x8}"),
        };
    }

    private async Task ReadSimpleReplyAsync(ulong cookie, string command, long offset, CancellationToken cancellationToken)
    {
        await ReadExactlyAsync(_header.AsMemory(4, SimpleReplyHeader.Size - 4), cancellationToken).ConfigureAwait(false);
        SimpleReplyHeader.TryRead(_header, out var reply);
        if (reply.Cookie != cookie)
        {
            throw Broken("a reply to a request that was not sent");
        }

        if (reply.Error != NbdError.None)
        {
            throw new SourceException($"nbd: {Address.Display}: {command} at {offset} failed: {Describe(reply.Error)}");
        }
    }

    private async Task<StructuredReplyHeader> ReadChunkHeaderAsync(ulong cookie, CancellationToken cancellationToken)
    {
        await ReadExactlyAsync(_header.AsMemory(4, StructuredReplyHeader.Size - 4), cancellationToken).ConfigureAwait(false);
        StructuredReplyHeader.TryRead(_header, out var chunk);
        if (chunk.Cookie != cookie)
        {
            throw Broken("a reply to a request that was not sent");
        }

        if (chunk.Length > MaximumBlockSize + 64L && chunk.Type != NbdReplyChunkType.OffsetData)
        {
            throw Broken($"a {chunk.Length}-byte chunk");
        }

        return chunk;
    }

    private async Task<byte[]> ReadPayloadAsync(StructuredReplyHeader chunk, CancellationToken cancellationToken)
    {
        if (chunk.Length > MaxOptionReply * 16)
        {
            throw Broken($"a {chunk.Length}-byte chunk");
        }

        var payload = new byte[chunk.Length];
        await ReadExactlyAsync(payload, cancellationToken).ConfigureAwait(false);
        return payload;
    }

    /// <summary>An error chunk gives its message; an unknown chunk is skipped, as the protocol allows for non-error types.</summary>
    private async Task<string?> ReadOtherChunkAsync(StructuredReplyHeader chunk, CancellationToken cancellationToken)
    {
        var payload = await ReadPayloadAsync(chunk, cancellationToken).ConfigureAwait(false);
        if (!chunk.IsError)
        {
            return null;
        }

        return ErrorChunk.TryRead(payload, out var e)
            ? Describe(e.Error) + (e.Message.Length > 0 ? $" ({Specs.Redact.Spec(e.Message)})" : "")
            : "an error the server did not describe";
    }

    private static string Describe(NbdError error) => error switch
    {
        NbdError.Perm => "operation not permitted (EPERM)",
        NbdError.IO => "input/output error (EIO)",
        NbdError.NoMem => "out of memory (ENOMEM)",
        NbdError.Invalid => "invalid argument (EINVAL)",
        NbdError.NoSpace => "no space left (ENOSPC)",
        NbdError.Overflow => "value too large (EOVERFLOW)",
        NbdError.NotSupported => "not supported (ENOTSUP)",
        NbdError.Shutdown => "the server is shutting down (ESHUTDOWN)",
        _ => $"error {(uint)error}",
    };

    private SourceException Broken(string what) => new($"nbd: {Address.Display}: the server sent {what}; the connection cannot go on");

    private async Task ReadExactlyAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            await _stream.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException e)
        {
            throw new SourceException($"nbd: {Address.Display}: the server closed the connection{_closeHint}", e) { IsTransient = false };
        }
        catch (IOException e)
        {
            throw new SourceException($"nbd: {Address.Display}: {e.Message}{_closeHint}", e) { IsTransient = false };
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync().ConfigureAwait(false);
        _socket.Dispose();
    }
}
