using System.Net;
using System.Net.Sockets;

namespace UrlDisk.Sources.Nbd;

/// <summary>
/// Where an NBD export is, from QEMU's URI forms: <c>nbd://host[:port]/[export]</c> (also <c>nbd+tcp://</c>) and
/// <c>nbd+unix:///[export]?socket=PATH</c>. The export name is the percent-decoded path after the first '/'.
/// </summary>
internal sealed record NbdAddress(string? Host, int Port, string? SocketPath, string ExportName)
{
    public const int DefaultPort = 10809;

    /// <summary>How it is shown in messages and <c>info</c>.</summary>
    public string Display => SocketPath is not null
        ? $"nbd+unix:///{Uri.EscapeDataString(ExportName)}?socket={SocketPath}"
        : $"nbd://{(Host!.Contains(':') ? $"[{Host}]" : Host)}:{Port}/{Uri.EscapeDataString(ExportName)}";

    public static NbdAddress Parse(string url)
    {
        int colon = url.IndexOf("://", StringComparison.Ordinal);
        string scheme = colon > 0 ? url[..colon].ToLowerInvariant() : "";
        if (scheme is not ("nbd" or "nbd+tcp" or "nbd+unix"))
        {
            throw Bad(url, "it does not start with nbd://, nbd+tcp:// or nbd+unix://");
        }

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

        if (scheme == "nbd+unix")
        {
            if (authority.Length > 0)
            {
                throw Bad(url, "nbd+unix takes no host; use nbd+unix:///EXPORT?socket=/path/to/socket");
            }

            string? socket = null;
            foreach (string pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                int eq = pair.IndexOf('=');
                string key = eq < 0 ? pair : pair[..eq];
                if (key != "socket")
                {
                    throw Bad(url, $"unknown query parameter '{key}'; nbd+unix takes only socket=PATH");
                }

                socket = Uri.UnescapeDataString(pair[(eq + 1)..]);
            }

            if (string.IsNullOrEmpty(socket))
            {
                throw Bad(url, "nbd+unix needs the socket's path: nbd+unix:///EXPORT?socket=/path/to/socket");
            }

            return new NbdAddress(null, 0, socket, export);
        }

        if (query.Length > 0)
        {
            throw Bad(url, "nbd:// takes no query parameters (socket= belongs to nbd+unix://)");
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

        return new NbdAddress(host, port, null, export);
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
