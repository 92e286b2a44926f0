using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace UrlDisk.Sources.Ftp;

/// <summary>
/// Builds the one <see cref="SslClientAuthenticationOptions"/> shared by every control and data connection of a source.
/// </summary>
/// <remarks>
/// FTPS servers such as vsftpd (require_ssl_reuse=YES, its default) refuse a data connection whose TLS session is not
/// a resumption of the control connection's. On Linux, SslStream resumes sessions from a process-wide OpenSSL cache
/// keyed by the SNI name: it stores a session under the name the handshake sent and looks it up by TargetHost. For an
/// IP-literal host no SNI is sent (RFC 6066 forbids it), so nothing is stored and every data connection is refused
/// with "522 SSL connection failed: session reuse required". For IP literals we therefore use a synthetic name under
/// the reserved ".invalid" TLD as TargetHost (it only labels the session) and check the certificate against the IP
/// address ourselves.
/// </remarks>
internal static class FtpTlsOptions
{
    public static SslClientAuthenticationOptions Create(FtpSettings settings)
    {
        IPAddress? ip = IPAddress.TryParse(settings.Host.Trim('[', ']'), out var parsed) ? parsed : null;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = ip is null ? settings.Host : SessionNameFor(ip),
            AllowTlsResume = true,
        };
        if (settings.SslVerify && settings.CaCertificates is { } ca)
        {
            var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
            policy.CustomTrustStore.AddRange(ca);
            options.CertificateChainPolicy = policy;
        }

        if (!settings.SslVerify)
        {
            options.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
        }
        else if (ip is not null)
        {
            options.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 && certificate is not null && CertificateNamesAddress(certificate, ip))
                {
                    errors &= ~SslPolicyErrors.RemoteCertificateNameMismatch;
                }

                return errors == SslPolicyErrors.None;
            };
        }

        return options;
    }

    /// <summary>"192.0.2.7" → "ip-192-0-2-7.invalid"; "::1" → "ip--1.invalid".</summary>
    internal static string SessionNameFor(IPAddress ip)
        => "ip-" + ip.ToString().Replace('.', '-').Replace(':', '-').Replace('%', '-') + ".invalid";

    /// <summary>True when the certificate's subject alternative names (or, lacking those, its CN) include the address.</summary>
    internal static bool CertificateNamesAddress(X509Certificate certificate, IPAddress ip)
    {
        using var cert = new X509Certificate2(certificate);
        bool hasSan = false;
        foreach (var ext in cert.Extensions)
        {
            if (ext is X509SubjectAlternativeNameExtension san)
            {
                hasSan = true;
                foreach (var a in san.EnumerateIPAddresses())
                {
                    if (a.Equals(ip))
                    {
                        return true;
                    }
                }
            }
        }

        return !hasSan && string.Equals(cert.GetNameInfo(X509NameType.SimpleName, false), ip.ToString(), StringComparison.Ordinal);
    }
}
