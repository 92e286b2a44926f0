using System.Buffers;
using UrlDisk.Nbd.Wire;

namespace UrlDisk.Nbd;

/// <summary>Fixed-newstyle option haggling.</summary>
internal sealed partial class NbdConnection
{
    /// <summary>
    /// True when the client chose the export and transmission begins; false when it aborted. A client that has not
    /// finished by the handshake timeout (silent, or not reading our replies) is cut.
    /// </summary>
    private bool Handshake()
    {
        int state = 0; // 0 haggling, 1 done, 2 timed out
        using var timer = new Timer(_ =>
        {
            if (Interlocked.CompareExchange(ref state, 2, 0) == 0)
            {
                Abort();
            }
        });
        timer.Change(Options.HandshakeTimeout, Timeout.InfiniteTimeSpan);
        bool transmit = Haggle();

        // Lost the race with the timer: the socket is already shut down.
        return Interlocked.CompareExchange(ref state, 1, 0) == 0 && transmit;
    }

    private bool Haggle()
    {
        var small = new byte[ServerGreeting.Size];
        new ServerGreeting(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes).Write(small);
        Send(small);

        ClientHello.TryRead(Peek(ClientHello.Size), out var hello);
        Consume(ClientHello.Size);
        if (hello.HasUnknownFlags)
        {
            throw new NbdProtocolException($"unknown client flags 0x{(uint)hello.Flags:x}");
        }

        _noZeroes = (hello.Flags & NbdClientFlags.NoZeroes) != 0;
        while (true)
        {
            OptionRequestHeader.TryRead(Peek(OptionRequestHeader.Size), out var header);
            Consume(OptionRequestHeader.Size);
            if (header.Length > Options.MaxOptionLength)
            {
                throw new NbdProtocolException($"option {(uint)header.Option} carries {header.Length} bytes (at most {Options.MaxOptionLength} allowed)");
            }

            byte[] data = ArrayPool<byte>.Shared.Rent((int)header.Length);
            try
            {
                var payload = data.AsMemory(0, (int)header.Length);
                ReadExactly(payload.Span);
                bool? done = HandleOption(header.Option, payload);
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
    private bool? HandleOption(NbdOption option, ReadOnlyMemory<byte> data)
    {
        if (Options.TlsCertificate is not null && _tls is null && option is not (NbdOption.StartTls or NbdOption.Abort))
        {
            if (option == NbdOption.ExportName)
            {
                // No error reply exists for this option: hang up, as the protocol says.
                throw new NbdProtocolException("NBD_OPT_EXPORT_NAME without TLS on a server that requires it");
            }

            SendOptionError(option, NbdOptionReplyType.ErrTlsReqd, "this server requires TLS: negotiate NBD_OPT_STARTTLS first");
            return null;
        }

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
                Send(bytes);
                return true;

            case NbdOption.StartTls:
                StartTls(data);
                return null;

            case NbdOption.Abort:
                SendOptionReply(option, NbdOptionReplyType.Ack);
                return false;

            case NbdOption.List:
                if (data.Length != 0)
                {
                    SendOptionError(option, NbdOptionReplyType.ErrInvalid, "NBD_OPT_LIST takes no data");
                    return null;
                }

                var entry = new ServerEntry(_export.Name, Options.Description ?? "");
                SendOptionReply(option, NbdOptionReplyType.Server, entry.EncodedLength, entry.Write);
                SendOptionReply(option, NbdOptionReplyType.Ack);
                return null;

            case NbdOption.Info:
            case NbdOption.Go:
                return HandleInfo(option, data) && option == NbdOption.Go ? true : null;

            case NbdOption.StructuredReply:
                if (data.Length != 0)
                {
                    SendOptionError(option, NbdOptionReplyType.ErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data");
                    return null;
                }

                _structuredReplies = true;
                SendOptionReply(option, NbdOptionReplyType.Ack);
                return null;

            case NbdOption.ListMetaContext:
            case NbdOption.SetMetaContext:
                HandleMetaContext(option, data);
                return null;

            default:
                SendOptionError(option, NbdOptionReplyType.ErrUnsup, $"option {(uint)option} is not supported by this server");
                return null;
        }
    }

    /// <summary>NBD_OPT_STARTTLS: acknowledged in plaintext, then the TLS handshake; every later byte is encrypted.</summary>
    private void StartTls(ReadOnlyMemory<byte> data)
    {
        if (Options.TlsCertificate is null)
        {
            SendOptionError(NbdOption.StartTls, NbdOptionReplyType.ErrUnsup, "this server has no TLS certificate (serve --tls-cert/--tls-key)");
            return;
        }

        if (_tls is not null || data.Length != 0)
        {
            SendOptionError(NbdOption.StartTls, NbdOptionReplyType.ErrInvalid, _tls is not null ? "TLS is already on" : "NBD_OPT_STARTTLS takes no data");
            return;
        }

        SendOptionReply(NbdOption.StartTls, NbdOptionReplyType.Ack);
        if (_readEnd != _readStart)
        {
            throw new NbdProtocolException("the client sent data after NBD_OPT_STARTTLS before the TLS handshake");
        }

        var ssl = new System.Net.Security.SslStream(new System.Net.Sockets.NetworkStream(_socket, ownsSocket: false), leaveInnerStreamOpen: false);
        try
        {
            ssl.AuthenticateAsServer(Options.TlsCertificate, clientCertificateRequired: false, checkCertificateRevocation: false);
        }
        catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException)
        {
            ssl.Dispose();
            throw new NbdProtocolException($"TLS handshake failed: {e.Message}");
        }

        _tls = ssl;
    }

    /// <summary>NBD_OPT_INFO / NBD_OPT_GO; true when the export was described and acknowledged.</summary>
    private bool HandleInfo(NbdOption option, ReadOnlyMemory<byte> data)
    {
        if (!ExportInfoRequest.TryRead(data.Span, out var request))
        {
            SendOptionError(option, NbdOptionReplyType.ErrInvalid, "malformed NBD_OPT_INFO/GO data");
            return false;
        }

        if (request!.ExportName != _export.Name)
        {
            SendOptionError(option, NbdOptionReplyType.ErrUnknown, $"no export named '{NbdStrings.Truncate(request.ExportName, 256)}'; this server has '{_export.Name}'");
            return false;
        }

        var export = new InfoExport((ulong)_export.Device.Length, _export.FlagsFor(_structuredReplies));
        SendOptionReply(option, NbdOptionReplyType.Info, InfoExport.Size, b => { export.Write(b); return InfoExport.Size; });

        // Block sizes are sent whether asked or not (as qemu-nbd does): the minimum is 1 unless the device needs more.
        var sizes = new InfoBlockSize(_export.MinimumBlockSize, _export.PreferredBlockSize, _export.MaximumBlockSize);
        SendOptionReply(option, NbdOptionReplyType.Info, InfoBlockSize.Size, b => { sizes.Write(b); return InfoBlockSize.Size; });

        if (request.Requests.Contains(NbdInfoType.Name))
        {
            var text = new InfoText(NbdInfoType.Name, _export.Name);
            SendOptionReply(option, NbdOptionReplyType.Info, text.EncodedLength, text.Write);
        }

        if (request.Requests.Contains(NbdInfoType.Description) && !string.IsNullOrEmpty(Options.Description))
        {
            var text = new InfoText(NbdInfoType.Description, Options.Description);
            SendOptionReply(option, NbdOptionReplyType.Info, text.EncodedLength, text.Write);
        }

        SendOptionReply(option, NbdOptionReplyType.Ack);
        return true;
    }

    private void HandleMetaContext(NbdOption option, ReadOnlyMemory<byte> data)
    {
        if (!_structuredReplies)
        {
            SendOptionError(option, NbdOptionReplyType.ErrInvalid, "negotiate NBD_OPT_STRUCTURED_REPLY before metadata contexts");
            return;
        }

        if (!MetaContextRequest.TryRead(data.Span, out var request))
        {
            SendOptionError(option, NbdOptionReplyType.ErrInvalid, "malformed metadata context request");
            return;
        }

        if (request!.ExportName != _export.Name)
        {
            SendOptionError(option, NbdOptionReplyType.ErrUnknown, $"no export named '{NbdStrings.Truncate(request.ExportName, 256)}'");
            return;
        }

        bool list = option == NbdOption.ListMetaContext;

        // base:allocation always; qemu:allocation-depth with -A. Listing with no query, or a bare namespace ("base:",
        // "qemu:"), names every context in it; setting takes exact names only.
        bool Wanted(string context)
            => (list && request.Queries.Count == 0)
                || request.Queries.Any(q => q == context || (list && q.EndsWith(':') && context.StartsWith(q, StringComparison.Ordinal)));
        bool baseAllocation = Wanted(NbdExport.BaseAllocation);
        bool allocationDepth = Options.AllocationDepth && Wanted(NbdExport.AllocationDepth);
        if (!list)
        {
            _baseAllocation = baseAllocation;
            _allocationDepth = allocationDepth;
        }

        if (baseAllocation)
        {
            var entry = new MetaContextEntry(list ? 0u : BaseAllocationContextId, NbdExport.BaseAllocation);
            SendOptionReply(option, NbdOptionReplyType.MetaContext, entry.EncodedLength, entry.Write);
        }

        if (allocationDepth)
        {
            var entry = new MetaContextEntry(list ? 0u : AllocationDepthContextId, NbdExport.AllocationDepth);
            SendOptionReply(option, NbdOptionReplyType.MetaContext, entry.EncodedLength, entry.Write);
        }

        SendOptionReply(option, NbdOptionReplyType.Ack);
    }

    private const uint BaseAllocationContextId = 1;

    private const uint AllocationDepthContextId = 2;

    private delegate int PayloadWriter(Span<byte> destination);

    private void SendOptionReply(NbdOption option, NbdOptionReplyType type) => SendOptionReply(option, type, 0, null);

    private void SendOptionReply(NbdOption option, NbdOptionReplyType type, int length, PayloadWriter? writer)
    {
        var bytes = new byte[OptionReplyHeader.Size + length];
        new OptionReplyHeader(option, type, (uint)length).Write(bytes);
        writer?.Invoke(bytes.AsSpan(OptionReplyHeader.Size));
        Send(bytes);
    }

    private void SendOptionError(NbdOption option, NbdOptionReplyType type, string message)
    {
        message = NbdStrings.Truncate(message);
        SendOptionReply(option, type, NbdStrings.ByteCount(message), b => NbdStrings.Encode(message, b));
    }
}
