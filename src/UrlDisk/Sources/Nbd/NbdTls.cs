using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using UrlDisk.Sources.Http;

namespace UrlDisk.Sources.Nbd;

/// <summary>
/// TLS for an NBD client (<c>nbds://</c>, or the tls-* options): whom to trust and what to show. Names follow libnbd's
/// URI query: <c>tls-certificates=DIR</c> is a GnuTLS x509 directory as qemu's <c>tls-creds-x509</c> and nbdkit read it
/// (<c>ca-cert.pem</c>, and <c>client-cert.pem</c> with <c>client-key.pem</c> when the server wants a client
/// certificate); <c>tls-ca=FILE</c> is a PEM CA file; <c>tls-hostname</c> is the name checked in the certificate
/// (default: the host); <c>tls-verify-peer=off</c> skips the check. Without a CA the system store is trusted.
/// </summary>
internal sealed record NbdTls(string? CertificatesDirectory, string? CaFile, string? Hostname, bool VerifyPeer)
{
    /// <summary>The option and query names, as libnbd's nbd_connect_uri takes them (tls-ca is ours).</summary>
    public static readonly string[] OptionNames = ["tls-certificates", "tls-ca", "tls-hostname", "tls-verify-peer"];

    /// <summary>TLS with the system's trust store and the host's name.</summary>
    public static NbdTls Default { get; } = new(null, null, null, true);

    /// <summary>
    /// The client side of the handshake for <paramref name="host"/> (null for a Unix socket: then only the chain is
    /// checked unless tls-hostname names the server). Certificates are loaded here, so a bad file is one clear error.
    /// </summary>
    internal (SslClientAuthenticationOptions Options, CertificateErrorRecorder Errors) CreateOptions(string? host)
    {
        X509Certificate2Collection? trusted = LoadTrusted();
        X509Certificate2? client = LoadClientCertificate();
        string? name = Hostname ?? host;
        IPAddress? ip = name is not null && IPAddress.TryParse(name, out var parsed) ? parsed : null;
        var errors = new CertificateErrorRecorder();
        var options = new SslClientAuthenticationOptions
        {
            // An IP literal is not sent as SNI (RFC 6066); the address is checked against the certificate below.
            TargetHost = ip is null ? name ?? "" : "",
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            ClientCertificates = client is null ? null : new X509CertificateCollection { client },
            RemoteCertificateValidationCallback = (_, certificate, chain, policyErrors) =>
            {
                if (!VerifyPeer)
                {
                    return true;
                }

                if (certificate is null)
                {
                    errors.Record(SslPolicyErrors.RemoteCertificateNotAvailable, null);
                    return false;
                }

                using var leaf = new X509Certificate2(certificate);
                bool nameOk = name is null || (ip is not null ? Ftp.FtpTlsOptions.CertificateNamesAddress(leaf, ip) : (policyErrors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0);
                var found = nameOk ? SslPolicyErrors.None : SslPolicyErrors.RemoteCertificateNameMismatch;
                X509Chain? used = chain;
                using var custom = new X509Chain();
                if (trusted is not null)
                {
                    if (!TrustedCertificates.ChainBuilds(leaf, trusted, custom))
                    {
                        found |= SslPolicyErrors.RemoteCertificateChainErrors;
                        used = custom;
                    }
                }
                else
                {
                    found |= policyErrors & SslPolicyErrors.RemoteCertificateChainErrors;
                }

                if (found != SslPolicyErrors.None)
                {
                    errors.Record(found, used);
                }

                return found == SslPolicyErrors.None;
            },
        };
        return (options, errors);
    }

    /// <summary>Which options gave the trust, for messages: never a key, only where the CA came from.</summary>
    public string TrustSource => !VerifyPeer ? "tls-verify-peer=off"
        : CaFile is not null ? $"the CA in tls-ca '{CaFile}'"
        : CertificatesDirectory is not null ? $"the CA in '{Path.Combine(CertificatesDirectory, "ca-cert.pem")}'"
        : "the system's trusted CAs";

    private X509Certificate2Collection? LoadTrusted()
    {
        string? file = CaFile ?? (CertificatesDirectory is null ? null : Path.Combine(CertificatesDirectory, "ca-cert.pem"));
        if (file is null)
        {
            return null;
        }

        string option = CaFile is not null ? "tls-ca" : "tls-certificates";
        return TrustedCertificates.Load(file, $"nbd: {option}", CaFile is null ? " (the directory must hold the CA as ca-cert.pem)" : "");
    }

    /// <summary>client-cert.pem with client-key.pem from the directory, when both are there (GnuTLS's layout).</summary>
    private X509Certificate2? LoadClientCertificate()
    {
        if (CertificatesDirectory is null)
        {
            return null;
        }

        string cert = Path.Combine(CertificatesDirectory, "client-cert.pem");
        string key = Path.Combine(CertificatesDirectory, "client-key.pem");
        bool hasCert = System.IO.File.Exists(cert);
        if (hasCert != System.IO.File.Exists(key))
        {
            throw new OptionException($"nbd: tls-certificates: '{CertificatesDirectory}' holds only one of client-cert.pem and client-key.pem; give both or neither");
        }

        if (!hasCert)
        {
            return null;
        }

        try
        {
            return X509Certificate2.CreateFromPemFile(cert, key);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            // The exception text says what is wrong with the files; it holds no key material.
            throw new OptionException($"nbd: tls-certificates: cannot load '{cert}' with its key client-key.pem: {e.GetType().Name}");
        }
    }
}
