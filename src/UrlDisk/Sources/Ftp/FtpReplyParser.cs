using System.Text;

namespace UrlDisk.Sources.Ftp;

/// <summary>
/// Pure parsers for the FTP control channel (RFC 959 §4.2 replies) and for the payloads of
/// EPSV (RFC 2428), PASV, MDTM and SIZE (RFC 3659) and FEAT (RFC 2389). No I/O.
/// </summary>
internal static class FtpReplyParser
{
    /// <summary>Longest reply we accept, so a broken server cannot make us buffer without end.</summary>
    public const int MaxReplyBytes = 64 * 1024;

    /// <summary>
    /// Reads one complete reply from the start of <paramref name="buffer"/>. Returns false when more bytes are needed.
    /// A multi-line reply starts with "ddd-" and ends with a line starting "ddd " with the same code; lines between
    /// may be anything. Throws <see cref="FormatException"/> on a malformed first line.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> buffer, out FtpReply reply, out int consumed)
    {
        reply = default;
        consumed = 0;
        int firstEnd = buffer.IndexOf((byte)'\n');
        if (firstEnd < 0)
        {
            if (buffer.Length > MaxReplyBytes)
            {
                throw new FormatException("FTP reply line is too long");
            }

            return false;
        }

        var first = TrimEol(buffer[..firstEnd]);
        if (first.Length < 3 || !TryCode(first, out int code) || (first.Length > 3 && first[3] != (byte)' ' && first[3] != (byte)'-'))
        {
            throw new FormatException($"malformed FTP reply line '{Printable(first)}'");
        }

        bool multi = first.Length > 3 && first[3] == (byte)'-';
        if (!multi)
        {
            reply = new FtpReply(code, first.Length > 4 ? Decode(first[4..]) : "");
            consumed = firstEnd + 1;
            return true;
        }

        var text = new StringBuilder(Decode(first[4..]));
        int pos = firstEnd + 1;
        while (true)
        {
            int end = buffer[pos..].IndexOf((byte)'\n');
            if (end < 0)
            {
                if (buffer.Length > MaxReplyBytes)
                {
                    throw new FormatException("FTP multi-line reply is too long");
                }

                return false;
            }

            var line = TrimEol(buffer.Slice(pos, end));
            pos += end + 1;
            if (line.Length >= 3 && TryCode(line, out int c) && c == code && (line.Length == 3 || line[3] == (byte)' '))
            {
                text.Append('\n').Append(line.Length > 4 ? Decode(line[4..]) : "");
                reply = new FtpReply(code, text.ToString());
                consumed = pos;
                return true;
            }

            text.Append('\n').Append(Decode(line));
        }
    }

    /// <summary>EPSV: "229 Entering Extended Passive Mode (|||6446|)" → 6446. Any delimiter character is allowed (RFC 2428 §3).</summary>
    public static bool TryParseEpsv(ReadOnlySpan<char> text, out int port)
    {
        port = 0;
        int open = text.IndexOf('(');
        if (open < 0 || text.Length < open + 6)
        {
            return false;
        }

        var s = text[(open + 1)..];
        char d = s[0];
        if (s.Length < 5 || s[1] != d || s[2] != d)
        {
            return false;
        }

        s = s[3..];
        int close = s.IndexOf(d);
        if (close <= 0 || close + 1 >= s.Length || s[close + 1] != ')')
        {
            return false;
        }

        return int.TryParse(s[..close], System.Globalization.NumberStyles.None, null, out port) && port is > 0 and <= 65535;
    }

    /// <summary>PASV: "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)" (parentheses optional, as some servers omit them).</summary>
    public static bool TryParsePasv(ReadOnlySpan<char> text, out byte[] address, out int port)
    {
        address = [];
        port = 0;
        int start = text.IndexOf('(');
        if (start < 0)
        {
            // No parentheses: the first digit after the reply text begins the numbers.
            start = text.IndexOfAnyInRange('0', '9') - 1;
            if (start < -1)
            {
                return false;
            }
        }

        var s = text[(start + 1)..];
        Span<int> n = stackalloc int[6];
        for (int i = 0; i < 6; i++)
        {
            int len = 0;
            while (len < s.Length && char.IsAsciiDigit(s[len]))
            {
                len++;
            }

            if (len == 0 || len > 3 || !int.TryParse(s[..len], out n[i]) || n[i] > 255)
            {
                return false;
            }

            s = s[len..];
            if (i < 5)
            {
                if (s.Length == 0 || s[0] != ',')
                {
                    return false;
                }

                s = s[1..];
            }
        }

        address = [(byte)n[0], (byte)n[1], (byte)n[2], (byte)n[3]];
        port = (n[4] << 8) | n[5];
        return port > 0;
    }

    /// <summary>MDTM (RFC 3659 §2.3): "YYYYMMDDHHMMSS[.sss]" in UTC.</summary>
    public static bool TryParseMdtm(ReadOnlySpan<char> text, out DateTimeOffset time)
    {
        time = default;
        text = text.Trim();
        if (text.Length < 14)
        {
            return false;
        }

        for (int i = 0; i < 14; i++)
        {
            if (!char.IsAsciiDigit(text[i]))
            {
                return false;
            }
        }

        int year = Num(text, 0, 4), month = Num(text, 4, 2), day = Num(text, 6, 2), hour = Num(text, 8, 2), minute = Num(text, 10, 2), second = Num(text, 12, 2);
        int ms = 0;
        if (text.Length > 14)
        {
            if (text[14] != '.' || text.Length == 15)
            {
                return false;
            }

            var frac = text[15..];
            foreach (char c in frac)
            {
                if (!char.IsAsciiDigit(c))
                {
                    return false;
                }
            }

            ms = int.Parse((frac.ToString() + "00")[..3], System.Globalization.NumberStyles.None, null);
        }

        if (month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(Math.Max(1, year), month) || hour > 23 || minute > 59 || second > 60)
        {
            return false;
        }

        time = new DateTimeOffset(year, month, day, hour, minute, Math.Min(second, 59), ms, TimeSpan.Zero);
        return true;
    }

    /// <summary>SIZE (RFC 3659 §4): the decimal byte count.</summary>
    public static bool TryParseSize(ReadOnlySpan<char> text, out long size)
        => long.TryParse(text.Trim(), System.Globalization.NumberStyles.None, null, out size);

    /// <summary>FEAT (RFC 2389): the feature lines between the first and last line, upper-cased keyword → parameters.</summary>
    public static Dictionary<string, string> ParseFeat(string text)
    {
        var features = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var lines = text.Split('\n');
        for (int i = 1; i < lines.Length - 1; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0)
            {
                continue;
            }

            int sp = line.IndexOf(' ', StringComparison.Ordinal);
            string name = (sp < 0 ? line : line[..sp]).ToUpperInvariant();
            features[name] = sp < 0 ? "" : line[(sp + 1)..].Trim();
        }

        return features;
    }

    private static int Num(ReadOnlySpan<char> text, int at, int len)
        => int.Parse(text.Slice(at, len), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture);

    private static bool TryCode(ReadOnlySpan<byte> line, out int code)
    {
        code = 0;
        for (int i = 0; i < 3; i++)
        {
            if (line[i] is < (byte)'0' or > (byte)'9')
            {
                return false;
            }

            code = (code * 10) + (line[i] - '0');
        }

        return line[0] is >= (byte)'1' and <= (byte)'5';
    }

    private static ReadOnlySpan<byte> TrimEol(ReadOnlySpan<byte> line)
        => line.Length > 0 && line[^1] == (byte)'\r' ? line[..^1] : line;

    // Servers send UTF-8 (RFC 2640) or Latin-1; invalid bytes become U+FFFD, which is fine for messages.
    private static string Decode(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);

    private static string Printable(ReadOnlySpan<byte> bytes)
    {
        string s = Decode(bytes[..Math.Min(bytes.Length, 80)]);
        return new string(s.Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }
}
