using System.Net.Security;
using System.Security.Authentication;
using UrlDisk.Nbd.Wire;

namespace UrlDisk.Sources.Nbd;

/// <summary>NBD_OPT_STARTTLS as the first option, then every byte through SslStream; no way back to plaintext.</summary>
internal sealed partial class NbdClient
{
    /// <summary>
    /// Said when the server hangs up right after the handshake: under TLS 1.3 a server that wants a client certificate
    /// (qemu-nbd's default, verify-peer=on) refuses it only then. Cleared by the first option reply.
    /// </summary>
    private string _closeHint = "";

    private async Task StartTlsIfAskedAsync(CancellationToken cancellationToken)
    {
        if (Address.Tls is not { } tls)
        {
            return;
        }

        // Certificates load before anything is sent, so a bad file is named before the server is involved.
        var (options, errors) = tls.CreateOptions(Address.Host);
        await SendOptionAsync(NbdOption.StartTls, [], cancellationToken).ConfigureAwait(false);
        var (header, data) = await ReadOptionReplyAsync(NbdOption.StartTls, cancellationToken, throwOnError: false).ConfigureAwait(false);
        if (header.Type != NbdOptionReplyType.Ack)
        {
            string detail = NbdStrings.TryDecode(data, out string text) && text.Length > 0 ? $" ({Specs.Redact.Spec(text)})" : "";
            string how = header.Type switch
            {
                NbdOptionReplyType.ErrUnsup => "unsupported",
                NbdOptionReplyType.ErrPolicy => "refused by its policy",
                _ => $"error 0x{(uint)header.Type:x}",
            };
            throw new SourceException($"nbd: {Address.Display}: the server does not do TLS (NBD_OPT_STARTTLS: {how}{detail}); not going on in plaintext") { IsTransient = false };
        }

        var ssl = new SslStream(_stream, leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
        }
        catch (AuthenticationException e)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            string why = errors.Last is { Length: > 0 } last
                ? $"the server's certificate failed verification against {tls.TrustSource}: {last}" + ((tls.Hostname ?? Address.Host) is { } name ? $" (name checked: '{name}')" : "")
                : $"the TLS handshake failed: {e.Message}";
            throw new SourceException($"nbd: {Address.Display}: {why}", e) { IsTransient = false };
        }
        catch (IOException e)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw new SourceException($"nbd: {Address.Display}: the TLS handshake failed: {e.Message}", e) { IsTransient = false };
        }

        _stream = ssl;
        if (options.ClientCertificates is null)
        {
            _closeHint = " after the TLS handshake; if it wants a client certificate, put client-cert.pem and client-key.pem in the tls-certificates directory";
        }
    }
}
