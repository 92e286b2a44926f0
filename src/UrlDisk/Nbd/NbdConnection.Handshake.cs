using System.Buffers;
using UrlDisk.Nbd.Wire;

namespace UrlDisk.Nbd;

/// <summary>Fixed-newstyle option haggling.</summary>
internal sealed partial class NbdConnection
{
    /// <summary>True when the client chose the export and transmission begins; false when it aborted.</summary>
    private async Task<bool> HandshakeAsync(CancellationToken cancellationToken)
    {
        var small = new byte[ServerGreeting.Size];
        new ServerGreeting(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes).Write(small);
        await SendAsync(small).ConfigureAwait(false);

        await ReadExactlyAsync(small.AsMemory(0, ClientHello.Size), cancellationToken).ConfigureAwait(false);
        ClientHello.TryRead(small, out var hello);
        if (hello.HasUnknownFlags)
        {
            throw new NbdProtocolException($"unknown client flags 0x{(uint)hello.Flags:x}");
        }

        _noZeroes = (hello.Flags & NbdClientFlags.NoZeroes) != 0;

        var headerBytes = new byte[OptionRequestHeader.Size];
        while (true)
        {
            await ReadExactlyAsync(headerBytes, cancellationToken).ConfigureAwait(false);
            OptionRequestHeader.TryRead(headerBytes, out var header);
            if (header.Length > Options.MaxOptionLength)
            {
                throw new NbdProtocolException($"option {(uint)header.Option} carries {header.Length} bytes (at most {Options.MaxOptionLength} allowed)");
            }

            byte[] data = ArrayPool<byte>.Shared.Rent((int)header.Length);
            try
            {
                var payload = data.AsMemory(0, (int)header.Length);
                await ReadExactlyAsync(payload, cancellationToken).ConfigureAwait(false);
                bool? done = await HandleOptionAsync(header.Option, payload).ConfigureAwait(false);
                if (done is { } transmit)
                {
                    return transmit;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(data);
            }
        }
    }

    /// <summary>Null to keep haggling, true to start transmission, false to end the connection.</summary>
    private async ValueTask<bool?> HandleOptionAsync(NbdOption option, ReadOnlyMemory<byte> data)
    {
        switch (option)
        {
            case NbdOption.ExportName:
                if (!NbdStrings.TryDecode(data.Span, out string name) || name != _export.Name)
                {
                    // This option has no error reply: the only answer is to hang up.
                    throw new NbdProtocolException("NBD_OPT_EXPORT_NAME asked for an export this server does not have");
                }

                var reply = new ExportNameReply((ulong)_export.Device.Length, _export.FlagsFor(_structuredReplies), _noZeroes);
                var bytes = new byte[reply.EncodedLength];
                reply.Write(bytes);
                await SendAsync(bytes).ConfigureAwait(false);
                return true;

            case NbdOption.Abort:
                await SendOptionReplyAsync(option, NbdOptionReplyType.Ack).ConfigureAwait(false);
                return false;

            case NbdOption.List:
                if (data.Length != 0)
                {
                    await SendOptionErrorAsync(option, NbdOptionReplyType.ErrInvalid, "NBD_OPT_LIST takes no data").ConfigureAwait(false);
                    return null;
                }

                var entry = new ServerEntry(_export.Name, Options.Description ?? "");
                await SendOptionReplyAsync(option, NbdOptionReplyType.Server, entry.EncodedLength, entry.Write).ConfigureAwait(false);
                await SendOptionReplyAsync(option, NbdOptionReplyType.Ack).ConfigureAwait(false);
                return null;

            case NbdOption.Info:
            case NbdOption.Go:
                return await HandleInfoAsync(option, data).ConfigureAwait(false) && option == NbdOption.Go ? true : null;

            case NbdOption.StructuredReply:
                if (data.Length != 0)
                {
                    await SendOptionErrorAsync(option, NbdOptionReplyType.ErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data").ConfigureAwait(false);
                    return null;
                }

                _structuredReplies = true;
                await SendOptionReplyAsync(option, NbdOptionReplyType.Ack).ConfigureAwait(false);
                return null;

            case NbdOption.ListMetaContext:
            case NbdOption.SetMetaContext:
                await HandleMetaContextAsync(option, data).ConfigureAwait(false);
                return null;

            default:
                await SendOptionErrorAsync(option, NbdOptionReplyType.ErrUnsup, $"option {(uint)option} is not supported by this server").ConfigureAwait(false);
                return null;
        }
    }

    /// <summary>NBD_OPT_INFO / NBD_OPT_GO; true when the export was described and acknowledged.</summary>
    private async ValueTask<bool> HandleInfoAsync(NbdOption option, ReadOnlyMemory<byte> data)
    {
        if (!ExportInfoRequest.TryRead(data.Span, out var request))
        {
            await SendOptionErrorAsync(option, NbdOptionReplyType.ErrInvalid, "malformed NBD_OPT_INFO/GO data").ConfigureAwait(false);
            return false;
        }

        if (request!.ExportName != _export.Name)
        {
            await SendOptionErrorAsync(option, NbdOptionReplyType.ErrUnknown, $"no export named '{NbdStrings.Truncate(request.ExportName, 256)}'; this server has '{_export.Name}'").ConfigureAwait(false);
            return false;
        }

        var export = new InfoExport((ulong)_export.Device.Length, _export.FlagsFor(_structuredReplies));
        await SendOptionReplyAsync(option, NbdOptionReplyType.Info, InfoExport.Size, b => { export.Write(b); return InfoExport.Size; }).ConfigureAwait(false);

        // Block sizes are sent whether asked or not (as qemu-nbd does): the minimum is 1 unless the device needs more.
        var sizes = new InfoBlockSize(_export.MinimumBlockSize, _export.PreferredBlockSize, _export.MaximumBlockSize);
        await SendOptionReplyAsync(option, NbdOptionReplyType.Info, InfoBlockSize.Size, b => { sizes.Write(b); return InfoBlockSize.Size; }).ConfigureAwait(false);

        if (request.Requests.Contains(NbdInfoType.Name))
        {
            var text = new InfoText(NbdInfoType.Name, _export.Name);
            await SendOptionReplyAsync(option, NbdOptionReplyType.Info, text.EncodedLength, text.Write).ConfigureAwait(false);
        }

        if (request.Requests.Contains(NbdInfoType.Description) && !string.IsNullOrEmpty(Options.Description))
        {
            var text = new InfoText(NbdInfoType.Description, Options.Description);
            await SendOptionReplyAsync(option, NbdOptionReplyType.Info, text.EncodedLength, text.Write).ConfigureAwait(false);
        }

        await SendOptionReplyAsync(option, NbdOptionReplyType.Ack).ConfigureAwait(false);
        return true;
    }

    private async ValueTask HandleMetaContextAsync(NbdOption option, ReadOnlyMemory<byte> data)
    {
        if (!_structuredReplies)
        {
            await SendOptionErrorAsync(option, NbdOptionReplyType.ErrInvalid, "negotiate NBD_OPT_STRUCTURED_REPLY before metadata contexts").ConfigureAwait(false);
            return;
        }

        if (!MetaContextRequest.TryRead(data.Span, out var request))
        {
            await SendOptionErrorAsync(option, NbdOptionReplyType.ErrInvalid, "malformed metadata context request").ConfigureAwait(false);
            return;
        }

        if (request!.ExportName != _export.Name)
        {
            await SendOptionErrorAsync(option, NbdOptionReplyType.ErrUnknown, $"no export named '{NbdStrings.Truncate(request.ExportName, 256)}'").ConfigureAwait(false);
            return;
        }

        bool list = option == NbdOption.ListMetaContext;

        // base:allocation is the only context. Listing with no query, or with the bare "base:" namespace, names it too.
        bool match = request.Queries.Any(q => q == NbdExport.BaseAllocation || (list && q == "base:")) || (list && request.Queries.Count == 0);
        if (!list)
        {
            _baseAllocation = match;
        }

        if (match)
        {
            var entry = new MetaContextEntry(list ? 0u : BaseAllocationContextId, NbdExport.BaseAllocation);
            await SendOptionReplyAsync(option, NbdOptionReplyType.MetaContext, entry.EncodedLength, entry.Write).ConfigureAwait(false);
        }

        await SendOptionReplyAsync(option, NbdOptionReplyType.Ack).ConfigureAwait(false);
    }

    private const uint BaseAllocationContextId = 1;

    private delegate int PayloadWriter(Span<byte> destination);

    private ValueTask SendOptionReplyAsync(NbdOption option, NbdOptionReplyType type) => SendOptionReplyAsync(option, type, 0, null);

    private ValueTask SendOptionReplyAsync(NbdOption option, NbdOptionReplyType type, int length, PayloadWriter? writer)
    {
        var bytes = new byte[OptionReplyHeader.Size + length];
        new OptionReplyHeader(option, type, (uint)length).Write(bytes);
        writer?.Invoke(bytes.AsSpan(OptionReplyHeader.Size));
        return SendAsync(bytes);
    }

    private ValueTask SendOptionErrorAsync(NbdOption option, NbdOptionReplyType type, string message)
    {
        message = NbdStrings.Truncate(message);
        return SendOptionReplyAsync(option, type, NbdStrings.ByteCount(message), b => NbdStrings.Encode(message, b));
    }
}
