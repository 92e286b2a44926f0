using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace UrlDisk.Sources.Http;

/// <summary>Builds the one <see cref="HttpClient"/> a source uses: our redirects, our cookies, certificate rules from the options.</summary>
internal static class HttpClientFactory
{
    public static HttpClient Create(HttpSourceOptions o, CertificateErrorRecorder certificateErrors, Func<HttpMessageHandler>? handlerFactory = null)
    {
        if (handlerFactory is not null)
        {
            return new HttpClient(handlerFactory(), disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        }

        var handler = new SocketsHttpHandler
        {
            // Redirects are resolved once at open, so every range request goes straight to the final URL.
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            MaxConnectionsPerServer = o.Connections,
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = o.Timeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            MaxResponseHeadersLength = 64,
        };

        if (o.Proxy is not null)
        {
            var proxy = new WebProxy(o.Proxy) { BypassProxyOnLocal = false };
            if (o.ProxyUsername is not null)
            {
                proxy.Credentials = new NetworkCredential(o.ProxyUsername, o.ProxyPassword ?? "");
            }

            handler.Proxy = proxy;
            handler.UseProxy = true;
        }
        else if (o.ProxyUsername is not null)
        {
            // As in QEMU: only credentials for the proxy the environment names.
            handler.DefaultProxyCredentials = new NetworkCredential(o.ProxyUsername, o.ProxyPassword ?? "");
        }

        var trusted = o.CaCertificates;
        handler.SslOptions = new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                if (!o.SslVerify)
                {
                    return true;
                }

                if (errors == SslPolicyErrors.None)
                {
                    return true;
                }

                if (trusted is not null && certificate is not null && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None)
                {
                    using var custom = new X509Chain();
                    using var leaf = new X509Certificate2(certificate);
                    if (TrustedCertificates.ChainBuilds(leaf, trusted, custom))
                    {
                        return true;
                    }
                }

                certificateErrors.Record(errors, chain);
                return false;
            },
        };

        return new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }
}

/// <summary>Keeps the last certificate failure so the error can say why, not just "SSL connection could not be established".</summary>
internal sealed class CertificateErrorRecorder
{
    private volatile string? _last;

    public string? Last => _last;

    public void Record(SslPolicyErrors errors, X509Chain? chain)
    {
        var parts = new List<string>();
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            parts.Add("the certificate's name does not match the host");
        }

        if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            parts.Add("the server sent no certificate");
        }

        if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            string status = chain is null ? "" : string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
            parts.Add("the certificate is not trusted" + (status.Length > 0 ? $" ({status})" : ""));
        }

        _last = string.Join(", ", parts);
    }
}
