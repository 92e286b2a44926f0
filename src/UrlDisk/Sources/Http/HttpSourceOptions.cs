using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using UrlDisk.Specs;

namespace UrlDisk.Sources.Http;

/// <summary>The http/https protocol node's options, validated. Names and defaults follow QEMU's curl driver where it has them.</summary>
public sealed record HttpSourceOptions
{
    internal static readonly IReadOnlyCollection<string> Names =
    [
        "url", "sslverify", "timeout", "cookie", "username", "password-file",
        "proxy", "proxy-username", "proxy-password-file", "force-range",
        "connections", "cafile", "retries",
        "header", "bearer-token-file", "user-agent", "header-script",
    ];

    /// <summary>The default <see cref="Readahead"/>: 256 KiB.</summary>
    public const long DefaultReadahead = Layers.ReadaheadLayer.DefaultReadahead;

    /// <summary>The URL without user info; credentials live in <see cref="Username"/>/<see cref="Password"/>.</summary>
    public required Uri Url { get; init; }
    /// <summary>Bytes fetched ahead of a read (<c>readahead</c>, an option of the readahead layer; a multiple of 512, at most 256M).</summary>
    public long Readahead { get; init; } = DefaultReadahead;
    /// <summary>Verify the server's TLS certificate (<c>sslverify</c>; default on).</summary>
    public bool SslVerify { get; init; } = true;
    /// <summary>How long a request may go without progress before it fails and is retried (<c>timeout</c>).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>The <c>Cookie</c> header sent to the original origin only (<c>cookie</c>).</summary>
    public string? Cookie { get; init; }
    /// <summary>The user for HTTP basic authentication (<c>username</c>, or user@ in the URL).</summary>
    public string? Username { get; init; }
    /// <summary>The password for <see cref="Username"/> (<c>password-file</c>, or user:password@ in the URL).</summary>
    public string? Password { get; init; }
    /// <summary>The HTTP proxy (<c>proxy</c>); null means the environment's (<c>http_proxy</c>, <c>https_proxy</c>).</summary>
    public Uri? Proxy { get; init; }
    /// <summary>The user for the proxy (<c>proxy-username</c>).</summary>
    public string? ProxyUsername { get; init; }
    /// <summary>The proxy password (<c>proxy-password-file</c>).</summary>
    public string? ProxyPassword { get; init; }
    /// <summary>Probe with a ranged GET instead of HEAD (<c>force-range</c>).</summary>
    public bool ForceRange { get; init; }
    /// <summary>Connections per server (<c>connections</c>, 1 to 256).</summary>
    public int Connections { get; init; } = 8;
    /// <summary>The certificates of <c>cafile</c>, trusted besides the system's; null without the option.</summary>
    public X509Certificate2Collection? CaCertificates { get; init; }
    /// <summary>Failed attempts in a row without progress before a read fails (<c>retries</c>, 0 to 100).</summary>
    public int Retries { get; init; } = 5;
    /// <summary>Bytes of the read cache (<c>cache-size</c>, an option of the readahead layer).</summary>
    public long CacheSize { get; init; } = Layers.ReadaheadLayer.DefaultCacheSize;

    /// <summary>
    /// Extra request headers as <c>Name: value</c> lines (<c>header</c>, repeatable), sent like credentials: only to
    /// the original URL's origin, never after a redirect elsewhere, and never printed.
    /// </summary>
    public IReadOnlyList<string> Headers { get; init; } = [];

    /// <summary>A token sent as <c>Authorization: Bearer …</c> to the original origin (<c>bearer-token-file</c>).</summary>
    public string? BearerToken { get; init; }

    /// <summary>The <c>User-Agent</c> header (<c>user-agent</c>); null sends <c>UrlDisk/version</c>.</summary>
    public string? UserAgent { get; init; }

    /// <summary>
    /// A shell command whose output (<c>Name: value</c> lines) is sent as headers to the original origin; run at open
    /// and again whenever the server answers 401 or 403, so expiring tokens are renewed (<c>header-script</c>, as
    /// nbdkit's curl plugin).
    /// </summary>
    public string? HeaderScript { get; init; }

    /// <summary>Validates a protocol node for driver <paramref name="driver"/> ("http" or "https"); <c>readahead</c> and <c>cache-size</c> belong to the readahead layer.</summary>
    internal static HttpSourceOptions Parse(string driver, OptionTree node)
    {
        node.RejectUnknown(driver, Names, "header");
        string url = node["url"] ?? throw new OptionException($"{driver} curl driver requires an 'url' option");
        if (!url.StartsWith(driver + "://", StringComparison.OrdinalIgnoreCase))
        {
            throw new OptionException($"{driver} curl driver cannot handle the URL '{Redact.Url(url)}' (does not start with '{driver}://')");
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new OptionException($"{driver}: '{Redact.Url(url)}' is not a valid URL");
        }

        string? username = node["username"];
        string? password = ReadSecretFile(node, "password-file");
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            int colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            string urlUser = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            username ??= urlUser;
            if (colon >= 0)
            {
                password ??= Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            }

            uri = new UriBuilder(uri) { UserName = "", Password = "" }.Uri;
        }

        if (password is not null && username is null)
        {
            throw new OptionException($"{driver}: password-file is given but no username (set username or put user@ in the URL)");
        }

        Uri? proxy = null;
        if (node["proxy"] is { } p)
        {
            if (!Uri.TryCreate(p.Contains("://", StringComparison.Ordinal) ? p : "http://" + p, UriKind.Absolute, out proxy))
            {
                throw new OptionException($"{driver}: proxy '{Redact.Url(p)}' is not a valid URL; use http://host:port");
            }
        }

        var caCertificates = ReadCaFile(driver, node);

        var headers = new List<string>();
        if (node["header"] is { } single)
        {
            headers.Add(single);
        }

        // Repeated: header.0, header.1 … (a JSON array, or header= given more than once in key=value form).
        var child = node.Child("header");
        foreach (var key in child.Keys.Order(StringComparer.Ordinal))
        {
            if (!int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))
            {
                throw new OptionException($"{driver}: unknown option '{node.Path}header.{key}'; give header=NAME: VALUE, repeated for more headers");
            }
        }

        headers.AddRange(child.Keys.OrderBy(k => int.Parse(k, System.Globalization.CultureInfo.InvariantCulture)).Select(k => child[k]!));
        foreach (var h in headers)
        {
            HttpHeaderLines.Check(h, $"{driver}: option '{node.Path}header'");
        }

        string? userAgent = node["user-agent"];
        if (userAgent is not null && (userAgent.Length == 0 || userAgent.Any(char.IsControl)))
        {
            throw new OptionException($"{driver}: option '{node.Path}user-agent' must be a non-empty line without control characters");
        }

        string? bearer = ReadSecretFile(node, "bearer-token-file");
        if (bearer is not null && (bearer.Length == 0 || bearer.Any(char.IsControl)))
        {
            throw new OptionException($"{driver}: option '{node.Path}bearer-token-file': the file must hold one line, the token");
        }

        string? headerScript = node["header-script"];
        if (headerScript is { Length: 0 })
        {
            throw new OptionException($"{driver}: option '{node.Path}header-script' is empty; give a shell command that prints NAME: VALUE lines");
        }

        return new HttpSourceOptions
        {
            Url = uri,
            SslVerify = node.GetBool("sslverify", true),
            Timeout = TimeSpan.FromSeconds(node.GetSeconds("timeout", 30, 10000)),
            Cookie = node["cookie"],
            Username = username,
            Password = password,
            Proxy = proxy,
            ProxyUsername = node["proxy-username"],
            ProxyPassword = ReadSecretFile(node, "proxy-password-file"),
            ForceRange = node.GetBool("force-range", false),
            Connections = node.GetInt("connections", 8, 1, 256),
            CaCertificates = caCertificates,
            Retries = node.GetInt("retries", 5, 0, 100),
            Headers = headers,
            BearerToken = bearer,
            UserAgent = userAgent,
            HeaderScript = headerScript,
        };
    }

    /// <summary>Loads <c>cafile</c> now, so a missing file, or one that holds no certificate (empty, a key), is an option error.</summary>
    private static X509Certificate2Collection? ReadCaFile(string driver, OptionTree node)
    {
        string? path = node.GetPath("cafile");
        if (path is null)
        {
            return null;
        }

        return TrustedCertificates.Load(path, $"{driver}: option '{node.Path}cafile'");
    }

    private static string? ReadSecretFile(OptionTree node, string key)
    {
        string? path = node.GetPath(key);
        if (path is null)
        {
            return null;
        }

        try
        {
            // Trailing newlines are an artefact of `echo pw > file`, never part of a password.
            return System.IO.File.ReadAllText(path, Encoding.UTF8).TrimEnd('\r', '\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OptionException($"option '{node.Path}{key}': cannot read '{path}': {e.Message}");
        }
    }
}
