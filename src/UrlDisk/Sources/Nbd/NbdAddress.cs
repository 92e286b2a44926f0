using System.Net;
using System.Net.Sockets;

namespace UrlDisk.Sources.Nbd;

/// <summary>
/// Where an NBD export is, from QEMU's URI forms: <c>nbd://host[:port]/[export]</c> (also <c>nbd+tcp://</c>) and
/// <c>nbd+unix:///[export]?socket=PATH</c>, and with TLS (libnbd's and the NBD URI spec's) <c>nbds://</c> and
/// <c>nbds+unix://</c>, whose query may hold the tls-* parameters of <see cref="NbdTls"/>. The export name is the
/// percent-decoded path after the first '/'.
/// </summary>
internal sealed record NbdAddress(string? Host, int Port, string? SocketPath, string ExportName)
{
    public const int DefaultPort = 10809;

    /// <summary>STARTTLS before anything else, and never plaintext, when set.</summary>
    public NbdTls? Tls { get; init; }

    /// <summary>How it is shown in messages and <c>info</c> (tls-* parameters are left out).</summary>
    public string Display => SocketPath is not null
        ? $"nbd{(Tls is null ? "" : "s")}+unix:///{Uri.EscapeDataString(ExportName)}?socket={SocketPath}"
        : $"nbd{(Tls is null ? "" : "s")}://{(Host!.Contains(':') ? $"[{Host}]" : Host)}:{Port}/{Uri.EscapeDataString(ExportName)}";

    public static NbdAddress Parse(string url)
    {
        int colon = url.IndexOf("://", StringComparison.Ordinal);
        string scheme = colon > 0 ? url[..colon].ToLowerInvariant() : "";
        if (scheme is not ("nbd" or "nbd+tcp" or "nbd+unix" or "nbds" or "nbds+tcp" or "nbds+unix"))
        {
            throw Bad(url, "it does not start with nbd://, nbd+tcp://, nbd+unix://, nbds://, nbds+tcp:// or nbds+unix://");
        }

        bool tls = scheme.StartsWith("nbds", StringComparison.Ordinal);
        string rest = url[(colon + 3)..];
        string query = "";
        int q = rest.IndexOf('?');
        if (q >= 0)
        {
            query = rest[(q + 1)..];
            rest = rest[..q];
        }

        int slash = rest.IndexOf('/');
        string authority = slash < 0 ? rest : rest[..slash];
        string export = slash < 0 ? "" : Uri.UnescapeDataString(rest[(slash + 1)..]);
        if (export.Contains('\0') || System.Text.Encoding.UTF8.GetByteCount(export) > 4096)
        {
            throw Bad(url, "the export name holds a NUL character or is longer than 4096 bytes");
        }

        var parameters = ParseQuery(url, query, tls);
        NbdTls? tlsSettings = tls ? TlsOf(url, parameters) : null;
        if (scheme.EndsWith("+unix", StringComparison.Ordinal))
        {
            if (authority.Length > 0)
            {
                throw Bad(url, $"{scheme} takes no host; use {scheme}:///EXPORT?socket=/path/to/socket");
            }

            if (!parameters.TryGetValue("socket", out string? socket) || socket.Length == 0)
            {
                throw Bad(url, $"{scheme} needs the socket's path: {scheme}:///EXPORT?socket=/path/to/socket");
            }

            return new NbdAddress(null, 0, socket, export) { Tls = tlsSettings };
        }

        if (parameters.ContainsKey("socket"))
        {
            throw Bad(url, tls
                ? $"{scheme}:// takes only the tls-* query parameters (socket= belongs to nbds+unix://)"
                : $"{scheme}:// takes no query parameters (socket= belongs to nbd+unix://)");
        }

        if (authority.Contains('@'))
        {
            throw Bad(url, "NBD has no log-in; remove the user name");
        }

        // [v6]:port, host:port, or a bare host (an unbracketed IPv6 address has more than one colon and no port).
        string host = authority;
        string? portText = null;
        if (authority.StartsWith('['))
        {
            int close = authority.IndexOf(']');
            if (close < 0 || (close + 1 < authority.Length && authority[close + 1] != ':'))
            {
                throw Bad(url, "a bracketed IPv6 address must be [ADDRESS] or [ADDRESS]:PORT");
            }

            host = authority[1..close];
            portText = close + 1 < authority.Length ? authority[(close + 2)..] : null;
        }
        else if (authority.IndexOf(':') is int c && c >= 0 && c == authority.LastIndexOf(':'))
        {
            host = authority[..c];
            portText = authority[(c + 1)..];
        }

        int port = DefaultPort;
        if (portText is not null && (!int.TryParse(portText, System.Globalization.NumberStyles.None, null, out port) || port is < 1 or > 65535))
        {
            throw Bad(url, $"port '{portText}' is not 1 to 65535");
        }

        if (host.Length == 0)
        {
            throw Bad(url, "it names no host; use nbd://HOST[:PORT]/EXPORT");
        }

        return new NbdAddress(host, port, null, export) { Tls = tlsSettings };
    }

    /// <summary>The query's parameters: socket=, and the tls-* ones on nbds URLs only (no silent plaintext).</summary>
    private static Dictionary<string, string> ParseQuery(string url, string query, bool tls)
    {
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            string key = eq < 0 ? pair : pair[..eq];
            if (key != "socket" && !NbdTls.OptionNames.Contains(key))
            {
                throw Bad(url, $"unknown query parameter '{key}'; known: socket, {string.Join(", ", NbdTls.OptionNames)}");
            }

            if (key != "socket" && !tls)
            {
                throw Bad(url, $"'{key}' is a TLS parameter; use nbds:// or nbds+unix:// for TLS");
            }

            if (!parameters.TryAdd(key, eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..])))
            {
                throw Bad(url, $"query parameter '{key}' is given twice");
            }
        }

        return parameters;
    }

    private static NbdTls TlsOf(string url, Dictionary<string, string> parameters)
    {
        try
        {
            return TlsFrom(key => parameters.GetValueOrDefault(key), key => $"query parameter '{key}'");
        }
        catch (OptionException e)
        {
            throw Bad(url, e.Message);
        }
    }

    /// <summary>TLS settings from tls-* values (URL query or spec options); <paramref name="name"/> names a value in messages.</summary>
    internal static NbdTls TlsFrom(Func<string, string?> value, Func<string, string> name)
    {
        string? Path(string key) => value(key) is { } v
            ? v.Length > 0 ? v : throw new OptionException($"{name(key)} is empty; give a path")
            : null;

        string? directory = Path("tls-certificates");
        string? ca = Path("tls-ca");
        if (directory is not null && ca is not null)
        {
            throw new OptionException($"{name("tls-ca")} and {name("tls-certificates")} both name a CA; give one");
        }

        string? hostname = value("tls-hostname");
        if (hostname is { Length: 0 })
        {
            throw new OptionException($"{name("tls-hostname")} is empty; give the name the server's certificate holds");
        }

        bool verify = value("tls-verify-peer") switch
        {
            null => true,
            "on" or "true" or "yes" or "1" => true,
            "off" or "false" or "no" or "0" => false,
            var other => throw new OptionException($"{name("tls-verify-peer")} is '{other}'; use on/off (true/false)"),
        };
        return new NbdTls(directory, ca, hostname, verify);
    }

    public async ValueTask<Socket> ConnectAsync(CancellationToken cancellationToken)
    {
        if (SocketPath is not null)
        {
            var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await unix.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), cancellationToken).ConfigureAwait(false);
                return unix;
            }
            catch (SocketException e)
            {
                unix.Dispose();
                throw new SourceException($"nbd: cannot connect to {Display}: {e.Message}", e) { IsTransient = false };
            }
        }

        var tcp = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(Host!, Port, cancellationToken).ConfigureAwait(false);
            return tcp;
        }
        catch (SocketException e)
        {
            tcp.Dispose();
            throw new SourceException($"nbd: cannot connect to {Display}: {e.Message}", e) { IsTransient = false };
        }
    }

    private static OptionException Bad(string url, string why) => new($"nbd: '{Specs.Redact.Url(url)}' is not a valid NBD URL: {why}");
}
