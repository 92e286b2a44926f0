using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;

namespace UrlDisk.Sources.Ftp;

/// <summary>
/// One logged-in FTP control connection (RFC 959), optionally under TLS (RFC 4217), that can fetch byte ranges of
/// one file with REST + RETR. Not thread-safe: the pool hands it to one reader at a time.
/// </summary>
internal sealed class FtpControlConnection : IAsyncDisposable
{
    private readonly FtpSettings _settings;
    private readonly SslClientAuthenticationOptions? _tlsOptions;
    private readonly Socket _socket;
    private Stream _stream;
    private readonly byte[] _buffer = new byte[FtpReplyParser.MaxReplyBytes + 4096];
    private int _start;
    private int _end;
    private bool _useEpsv = true;
    private bool _protectData;

    private FtpControlConnection(FtpSettings settings, SslClientAuthenticationOptions? tlsOptions, Socket socket, Stream stream)
    {
        _settings = settings;
        _tlsOptions = tlsOptions;
        _socket = socket;
        _stream = stream;
    }

    /// <summary>False once a failure left the conversation in an unknown state; the pool then drops it.</summary>
    public bool IsUsable { get; private set; } = true;

    public string Greeting { get; private set; } = "";
    public IReadOnlyDictionary<string, string> Features { get; private set; } = new Dictionary<string, string>();
    /// <summary>The file's size from SIZE, or -1 when the server does not implement SIZE.</summary>
    public long Size { get; private set; }

    /// <summary>False when FEAT shows the server cannot REST (resume) a stream-mode transfer: no byte ranges then.</summary>
    public bool CanResume { get; private set; } = true;
    public DateTimeOffset? Modified { get; private set; }
    public string? TlsProtocol { get; private set; }

    /// <summary>Connects, logs in, switches to binary and learns the file's size and modification time.</summary>
    public static async Task<FtpControlConnection> OpenAsync(FtpSettings settings, SslClientAuthenticationOptions? tlsOptions, CancellationToken cancellationToken)
    {
        using var timeout = new ProgressTimeout(settings.Timeout, cancellationToken);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        FtpControlConnection? conn = null;
        try
        {
            await socket.ConnectAsync(settings.Host, settings.Port, timeout.Token).ConfigureAwait(false);
            Stream stream = new NetworkStream(socket, ownsSocket: false);
            conn = new FtpControlConnection(settings, tlsOptions, socket, stream);
            if (settings.Tls == FtpTlsMode.Implicit)
            {
                await conn.StartTlsAsync(timeout.Token).ConfigureAwait(false);
            }

            var greeting = await conn.ReadFinalReplyAsync(timeout).ConfigureAwait(false);
            conn.Expect(greeting, "connect", 220);
            conn.Greeting = greeting.ToString();
            if (settings.Tls == FtpTlsMode.Explicit)
            {
                conn.Expect(await conn.CommandAsync("AUTH TLS", timeout).ConfigureAwait(false), "AUTH TLS", 234);
                await conn.StartTlsAsync(timeout.Token).ConfigureAwait(false);
            }

            await conn.LoginAsync(timeout).ConfigureAwait(false);
            if (settings.Tls != FtpTlsMode.None)
            {
                conn.Expect(await conn.CommandAsync("PBSZ 0", timeout).ConfigureAwait(false), "PBSZ", 200);
                conn.Expect(await conn.CommandAsync("PROT P", timeout).ConfigureAwait(false), "PROT", 200);
                conn._protectData = true;
            }

            var feat = await conn.CommandAsync("FEAT", timeout).ConfigureAwait(false);
            if (feat.Code == 211)
            {
                conn.Features = FtpReplyParser.ParseFeat(feat.Text);

                // RFC 3659 §5: a server that can resume stream-mode transfers lists "REST STREAM". Without FEAT we assume it can.
                conn.CanResume = conn.Features.TryGetValue("REST", out var rest) && rest.Contains("STREAM", StringComparison.OrdinalIgnoreCase);
            }

            conn.Expect(await conn.CommandAsync("TYPE I", timeout).ConfigureAwait(false), "TYPE I", 200);
            var size = await conn.CommandAsync("SIZE " + settings.Path, timeout).ConfigureAwait(false);
            if (size.Code is 500 or 502)
            {
                conn.Size = -1; // SIZE not implemented (RFC 3659 is an extension): the length comes at the end of a transfer
            }
            else
            {
                conn.Expect(size, "SIZE", 213);
                if (!FtpReplyParser.TryParseSize(size.Text, out long length))
                {
                    throw conn.Fail($"the server's SIZE reply '{conn.Said(size)}' is not a number", transient: false);
                }

                conn.Size = length;
            }

            var mdtm = await conn.CommandAsync("MDTM " + settings.Path, timeout).ConfigureAwait(false);
            if (mdtm.Code == 213 && FtpReplyParser.TryParseMdtm(mdtm.Text, out var modified))
            {
                conn.Modified = modified;
            }

            return conn;
        }
        catch (Exception e)
        {
            if (conn is not null)
            {
                await conn.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                socket.Dispose();
            }

            throw Translate(e, settings, timeout, "connect");
        }
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with the file's bytes from <paramref name="offset"/> (REST + RETR), then stops
    /// the transfer by closing the data connection and reads the final reply, so the connection can be used again.
    /// </summary>
    public async Task RetrieveAsync(long offset, Memory<byte> destination, Action<int> onBytes, CancellationToken cancellationToken)
    {
        using var timeout = new ProgressTimeout(_settings.Timeout, cancellationToken);
        IsUsable = false; // until the conversation is back at a known point
        Stream? data = null;
        try
        {
            data = await StartRetrieveAsync(offset, timeout).ConfigureAwait(false);
            int filled = 0;
            while (filled < destination.Length)
            {
                int n = await data.ReadAsync(destination[filled..], timeout.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                filled += n;
                onBytes(n);
                timeout.Progress();
            }

            // Closing the data connection stops the server mid-file; it answers 426 (or 226 if it had already sent all).
            await data.DisposeAsync().ConfigureAwait(false);
            data = null;
            var final = await ReadFinalReplyAsync(timeout).ConfigureAwait(false);
            IsUsable = true;
            if (filled < destination.Length)
            {
                if (final.IsSuccess)
                {
                    throw new RemoteFileChangedException(
                        $"{_settings.DisplayUrl}: the file ended at byte {offset + filled}, before the {offset + destination.Length} expected; it changed on the server");
                }

                throw Fail($"the transfer stopped after {filled} of {destination.Length} bytes: {Said(final)}", transient: true);
            }
        }
        catch (Exception e)
        {
            IsUsable = IsUsable && e is SourceException;
            throw Translate(e, _settings, timeout, "RETR");
        }
        finally
        {
            if (data is not null)
            {
                await data.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Sends the whole file, from byte 0 to its end, to <paramref name="sink"/> with a plain RETR (no REST), for
    /// servers that cannot resume. Returns the number of bytes once the server confirmed the end with 226.
    /// </summary>
    public async Task<long> RetrieveWholeAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken cancellationToken)
    {
        using var timeout = new ProgressTimeout(_settings.Timeout, cancellationToken);
        IsUsable = false;
        Stream? data = null;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(256 * 1024);
        try
        {
            data = await StartRetrieveAsync(0, timeout).ConfigureAwait(false);
            long total = 0;
            int n;
            while ((n = await data.ReadAsync(buffer, timeout.Token).ConfigureAwait(false)) > 0)
            {
                total += n;
                timeout.Progress();
                await sink(buffer.AsMemory(0, n), timeout.Token).ConfigureAwait(false);
            }

            await data.DisposeAsync().ConfigureAwait(false);
            data = null;
            var final = await ReadFinalReplyAsync(timeout).ConfigureAwait(false);
            IsUsable = true;
            if (!final.IsSuccess)
            {
                // The data connection ended but the server says the transfer did not: a break, not the end of the file.
                throw Fail($"the transfer stopped after {total} bytes: {Said(final)}", transient: true);
            }

            return total;
        }
        catch (Exception e)
        {
            IsUsable = IsUsable && e is SourceException;
            throw Translate(e, _settings, timeout, "RETR");
        }
        finally
        {
            if (data is not null)
            {
                await data.DisposeAsync().ConfigureAwait(false);
            }

            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Opens the data connection, sends REST (when not at 0) and RETR, and returns the data stream (TLS when PROT P).</summary>
    private async Task<Stream> StartRetrieveAsync(long offset, ProgressTimeout timeout)
    {
        var socket = await OpenDataSocketAsync(timeout).ConfigureAwait(false);
        Stream? stream = null;
        try
        {
            if (offset > 0)
            {
                var rest = await CommandAsync("REST " + offset.ToString(System.Globalization.CultureInfo.InvariantCulture), timeout).ConfigureAwait(false);
                Expect(rest, "REST", 350);
            }

            await SendAsync("RETR " + _settings.Path, timeout.Token).ConfigureAwait(false);
            var start = await ReadReplyAsync(timeout).ConfigureAwait(false);
            if (!start.IsPreliminary)
            {
                IsUsable = true;
                Expect(start, "RETR", 150);
            }

            // 150/125 is RETR's answer: the data follows. Preliminary replies after it are not progress.
            timeout.Progress();

            stream = new NetworkStream(socket, ownsSocket: true);
            if (_protectData)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                await ssl.AuthenticateAsClientAsync(_tlsOptions!, timeout.Token).ConfigureAwait(false);
            }

            return stream;
        }
        catch
        {
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }

            socket.Dispose();
            throw;
        }
    }

    private async Task<Socket> OpenDataSocketAsync(ProgressTimeout timeout)
    {
        var peer = (IPEndPoint)_socket.RemoteEndPoint!;
        int port = 0;
        if (_useEpsv)
        {
            var epsv = await CommandAsync("EPSV", timeout).ConfigureAwait(false);
            if (epsv.Code == 229 && FtpReplyParser.TryParseEpsv(epsv.Text, out port))
            {
                // EPSV names only the port: the data connection goes to the control connection's address.
            }
            else if (epsv.Code is 500 or 501 or 502 or 522 || epsv.Code == 229)
            {
                _useEpsv = false;
                port = 0;
            }
            else
            {
                Expect(epsv, "EPSV", 229);
            }
        }

        if (port == 0)
        {
            var pasv = await CommandAsync("PASV", timeout).ConfigureAwait(false);
            Expect(pasv, "PASV", 227);
            if (!FtpReplyParser.TryParsePasv(pasv.Text, out _, out port))
            {
                throw Fail($"cannot parse the PASV reply '{Said(pasv)}'", transient: false);
            }

            // The address in PASV is ignored on purpose: servers behind NAT get it wrong, and honouring it would let a
            // hostile server aim us at a third host (the "FTP bounce" family of problems).
        }

        var address = peer.Address.IsIPv4MappedToIPv6 ? peer.Address.MapToIPv4() : peer.Address;
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new IPEndPoint(address, port), timeout.Token).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private async Task LoginAsync(ProgressTimeout timeout)
    {
        var user = await CommandAsync("USER " + _settings.User, timeout).ConfigureAwait(false);
        if (user.Code == 331 || user.Code == 332)
        {
            await SendAsync("PASS " + _settings.Password, timeout.Token).ConfigureAwait(false);
            user = await ReadFinalReplyAsync(timeout).ConfigureAwait(false);
        }

        if (user.Code is not (230 or 202))
        {
            // Never echo the command: it carries the password.
            throw Fail($"login failed: {Said(user)}", transient: user.Code is 421 or 450 or 451);
        }
    }

    private async Task StartTlsAsync(CancellationToken cancellationToken)
    {
        var ssl = new SslStream(_stream, leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(_tlsOptions!, cancellationToken).ConfigureAwait(false);
        TlsProtocol = ssl.SslProtocol.ToString();
        _stream = ssl;
        _start = _end = 0;
    }

    private async Task<FtpReply> CommandAsync(string command, ProgressTimeout timeout)
    {
        await SendAsync(command, timeout.Token).ConfigureAwait(false);
        return await ReadFinalReplyAsync(timeout).ConfigureAwait(false);
    }

    private async Task SendAsync(string command, CancellationToken cancellationToken)
    {
        int max = Encoding.UTF8.GetMaxByteCount(command.Length) + 2;
        byte[] rented = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            int n = Encoding.UTF8.GetBytes(command, rented);
            rented[n++] = (byte)'\r';
            rented[n++] = (byte)'\n';
            await _stream.WriteAsync(rented.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Reads replies until one that is not preliminary (1xx). Preliminary replies are not progress: a server that
    /// keeps saying "still working" gets the same timeout as a silent one.
    /// </summary>
    private async Task<FtpReply> ReadFinalReplyAsync(ProgressTimeout timeout)
    {
        FtpReply reply;
        do
        {
            reply = await ReadReplyAsync(timeout).ConfigureAwait(false);
        }
        while (reply.IsPreliminary);

        return reply;
    }

    /// <summary>Reads one reply. Only a final (non-1xx) reply counts as progress; bytes on their way to one do not.</summary>
    private async Task<FtpReply> ReadReplyAsync(ProgressTimeout timeout)
    {
        while (true)
        {
            if (_end > _start && FtpReplyParser.TryRead(_buffer.AsSpan(_start, _end - _start), out var reply, out int consumed))
            {
                _start += consumed;
                if (!reply.IsPreliminary)
                {
                    timeout.Progress();
                }

                return reply;
            }

            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            if (_end == _buffer.Length)
            {
                throw new FormatException("FTP reply is too long");
            }

            int n = await _stream.ReadAsync(_buffer.AsMemory(_end), timeout.Token).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException("the server closed the control connection");
            }

            _end += n;
        }
    }

    private void Expect(FtpReply reply, string what, int code)
    {
        if (reply.Code != code && !(code == 150 && reply.Code == 125))
        {
            throw Fail($"{what} failed: {Said(reply)}", transient: reply.IsTransientFailure);
        }
    }

    /// <summary>A reply as quoted in a message: first line, credentials cut out.</summary>
    private string Said(FtpReply reply) => _settings.WithoutCredentials(reply.ToString());

    private SourceException Fail(string message, bool transient)
        => new($"{_settings.DisplayUrl}: {message}") { IsTransient = transient };

    private static Exception Translate(Exception e, FtpSettings settings, ProgressTimeout timeout, string what) => e switch
    {
        SourceException => e,
        OperationCanceledException when timeout.TimedOut => new SourceException(
            $"{settings.DisplayUrl}: {what}: no progress for {settings.Timeout.TotalSeconds:0.###} s (option timeout)", e)
        { IsTransient = true },
        OperationCanceledException => e,
        System.Security.Authentication.AuthenticationException => new SourceException(
            $"{settings.DisplayUrl}: TLS handshake failed: {e.Message} (options sslverify, cafile)", e),
        FormatException => new SourceException($"{settings.DisplayUrl}: {settings.WithoutCredentials(e.Message)}", e),
        IOException or SocketException or ObjectDisposedException => new SourceException(
            $"{settings.DisplayUrl}: {what}: {e.Message}", e)
        { IsTransient = true },
        _ => e,
    };

    public async ValueTask DisposeAsync()
    {
        IsUsable = false;
        try
        {
            if (_socket.Connected)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await SendAsync("QUIT", cts.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Best effort: the server may already be gone.
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
        _socket.Dispose();
    }
}
