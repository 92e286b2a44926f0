using System.Security.Cryptography.X509Certificates;
using UrlDisk.Specs;

namespace UrlDisk.Sources.Ftp;

internal enum FtpTlsMode
{
    None,

    /// <summary>AUTH TLS on a plain control connection (RFC 4217), <c>tls=explicit</c>.</summary>
    Explicit,

    /// <summary>TLS from the first byte (<c>ftps://</c>, port 990).</summary>
    Implicit,
}

/// <summary>Everything an FTP source needs to know, validated from a protocol node.</summary>
internal sealed record FtpSettings
{
    public required string Scheme { get; init; }
    public required string Host { get; init; }
    public required int Port { get; init; }

    /// <summary>The path sent with SIZE/MDTM/RETR: "dir/file" (relative to the login directory) or "/abs/file" for "//abs/file" in the URL, as curl does.</summary>
    public required string Path { get; init; }

    public required string User { get; init; }
    public required string Password { get; init; }
    public required FtpTlsMode Tls { get; init; }
    public bool SslVerify { get; init; } = true;
    public X509Certificate2Collection? CaCertificates { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
    public int Connections { get; init; } = 4;
    public int Retries { get; init; } = 5;

    /// <summary>The URL without credentials, for messages.</summary>
    public required string DisplayUrl { get; init; }

    /// <summary>
    /// <paramref name="serverText"/> (a reply quoted in a message) with the user name and password replaced by ***:
    /// servers echo them ("530 Login incorrect for bob"), and they must never reach a message. The anonymous
    /// defaults are no secret and stay.
    /// </summary>
    public string WithoutCredentials(string serverText)
    {
        // The longer first, in case one holds the other.
        foreach (string secret in new[] { User, Password }.OrderByDescending(x => x.Length))
        {
            if (secret.Length > 0 && secret is not (AnonymousUser or AnonymousPassword))
            {
                serverText = serverText.Replace(secret, "***", StringComparison.OrdinalIgnoreCase);
            }
        }

        return serverText;
    }

    private const string AnonymousUser = "anonymous";
    private const string AnonymousPassword = "urldisk@";

    public static IReadOnlyCollection<string> OptionNames { get; } =
        ["url", "username", "password-file", "tls", "sslverify", "cafile", "timeout", "connections", "retries"];

    public static FtpSettings FromNode(string driver, OptionTree node)
    {
        string url = node.GetRequiredString(driver, "url");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != "ftp" && uri.Scheme != "ftps"))
        {
            // No "scheme://…@" in the hint: message redaction would take it for credentials.
            throw new OptionException($"{driver}: '{Redact.Url(url)}' is not an FTP URL; use ftp://host[:port]/path or ftps://host[:port]/path (a user and password go before the host as user:password@)");
        }

        if (uri.Scheme != driver)
        {
            throw new OptionException($"{driver}: the URL scheme '{uri.Scheme}' does not match driver={driver}");
        }

        string display = Redact.Url(url);
        string rawPath = uri.AbsolutePath;
        if (rawPath.Length <= 1 || rawPath.EndsWith('/'))
        {
            throw new OptionException($"{driver}: '{display}' names no file; give the path of the image after the host");
        }

        // ";type=i" (RFC 1738) only repeats what we do anyway.
        int semi = rawPath.IndexOf(";type=", StringComparison.OrdinalIgnoreCase);
        if (semi >= 0)
        {
            rawPath = rawPath[..semi];
        }

        string path = Uri.UnescapeDataString(rawPath[1..]);
        if (path.Contains('\r') || path.Contains('\n'))
        {
            throw new OptionException($"{driver}: the path in '{display}' contains a line break");
        }

        if (path.Contains('\0'))
        {
            throw new OptionException($"{driver}: the path in '{display}' contains a NUL character (%00), which no FTP path can hold");
        }

        if (uri.Port == 0)
        {
            throw new OptionException($"{driver}: port 0 in '{display}' is not allowed; use 1 to 65535 (or none for {(driver == "ftps" ? 990 : 21)})");
        }

        string user = AnonymousUser;
        string password = AnonymousPassword;
        if (uri.UserInfo.Length > 0)
        {
            int colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            user = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            password = colon < 0 ? "" : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
        }

        if (node["username"] is { } u)
        {
            // A named user without a password anywhere logs in with an empty one, not the anonymous e-mail.
            if (uri.UserInfo.Length == 0)
            {
                password = "";
            }

            user = u;
        }

        if (node.GetPath("password-file") is { } pf)
        {
            try
            {
                password = System.IO.File.ReadAllText(pf).TrimEnd('\r', '\n');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new OptionException($"{driver}: option '{node.Path}password-file': cannot read '{pf}': {e.Message}");
            }
        }

        if ((user + password).AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
        {
            throw new OptionException($"{driver}: the user name or password contains a line break or NUL character, which FTP cannot send");
        }

        FtpTlsMode tls = driver == "ftps" ? FtpTlsMode.Implicit : FtpTlsMode.None;
        if (node["tls"] is { } t)
        {
            tls = (driver, t.ToLowerInvariant()) switch
            {
                ("ftp", "explicit") => FtpTlsMode.Explicit,
                ("ftp", "off" or "none") => FtpTlsMode.None,
                ("ftps", "implicit") => FtpTlsMode.Implicit,
                _ => throw new OptionException(driver == "ftp"
                    ? $"{driver}: option '{node.Path}tls': '{t}' is not allowed; use explicit (AUTH TLS) or off"
                    : $"{driver}: option '{node.Path}tls': '{t}' is not allowed; ftps:// is implicit TLS; for AUTH TLS use ftp:// with tls=explicit"),
            };
        }

        X509Certificate2Collection? ca = node.GetPath("cafile") is { } cafile ? TrustedCertificates.Load(cafile, $"{driver}: option '{node.Path}cafile'") : null;

        int defaultPort = tls == FtpTlsMode.Implicit ? 990 : 21;
        return new FtpSettings
        {
            Scheme = driver,
            Host = uri.IdnHost.Trim('[', ']'),
            Port = uri.IsDefaultPort || uri.Port < 0 ? defaultPort : uri.Port,
            Path = path,
            User = user,
            Password = password,
            Tls = tls,
            SslVerify = node.GetBool("sslverify", true),
            CaCertificates = ca,
            Timeout = TimeSpan.FromSeconds(node.GetSeconds("timeout", 30, 10000)),
            Connections = node.GetInt("connections", 4, 1, 64),
            Retries = node.GetInt("retries", 5, 0, 100),
            DisplayUrl = display,
        };
    }
}
