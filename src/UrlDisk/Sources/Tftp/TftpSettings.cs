using UrlDisk.Specs;

namespace UrlDisk.Sources.Tftp;

/// <summary>A TFTP source's validated options.</summary>
internal sealed record TftpSettings
{
    public required string Host { get; init; }
    public int Port { get; init; } = 69;

    /// <summary>Name sent in the RRQ: the URL path without its leading '/', as curl sends it.</summary>
    public required string FileName { get; init; }

    public required string DisplayUrl { get; init; }

    /// <summary>Requested block size (RFC 2348); the server may answer with less.</summary>
    public int BlockSize { get; init; } = 1428;

    /// <summary>Requested window (RFC 7440); 1 means lock-step as in RFC 1350.</summary>
    public int WindowSize { get; init; } = 8;

    /// <summary>Retransmission timeout; doubled after each silent wait.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Retransmissions in a row before the transfer fails.</summary>
    public int Retries { get; init; } = 6;

    /// <summary>Ask the server for the size (RFC 2349).</summary>
    public bool RequestSize { get; init; } = true;

    public static IReadOnlyCollection<string> OptionNames { get; } = ["url", "blksize", "windowsize", "timeout", "retries", "tsize"];

    public static TftpSettings FromNode(OptionTree node)
    {
        string url = node.GetRequiredString("tftp", "url");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != "tftp")
        {
            throw new OptionException($"tftp: '{Redact.Url(url)}' is not a TFTP URL; use tftp://host[:port]/path");
        }

        if (uri.UserInfo.Length > 0)
        {
            throw new OptionException("tftp: TFTP has no log-in; remove the user name from the URL");
        }

        string display = Redact.Url(url);
        if (uri.AbsolutePath.Length <= 1 || uri.AbsolutePath.EndsWith('/'))
        {
            throw new OptionException($"tftp: '{display}' names no file; give the path of the image after the host");
        }

        if (uri.Port == 0)
        {
            throw new OptionException($"tftp: port 0 in '{display}' is not allowed; use 1 to 65535 (or none for 69)");
        }

        string name = Uri.UnescapeDataString(uri.AbsolutePath[1..]);
        if (name.Contains('\0'))
        {
            throw new OptionException($"tftp: the path in '{display}' contains a NUL character (%00), which no TFTP file name can hold");
        }

        return new TftpSettings
        {
            Host = uri.IdnHost.Trim('[', ']'),
            Port = uri.Port > 0 ? uri.Port : 69,
            FileName = name,
            DisplayUrl = display,
            BlockSize = node.GetInt("blksize", 1428, 8, 65464),
            WindowSize = node.GetInt("windowsize", 8, 1, 65535),
            Timeout = TimeSpan.FromSeconds(node.GetSeconds("timeout", 1, 255)),
            Retries = node.GetInt("retries", 6, 0, 100),
            RequestSize = node.GetBool("tsize", true),
        };
    }
}
