using System.Globalization;
using System.Text;

namespace UrlDisk.Formats.Vmdk;

/// <summary>
/// The text descriptor of a VMDK (a file of its own, or embedded in a sparse extent): header keys, extent lines and
/// the disk database. Lines are <c>key=value</c> or extent lines; <c>#</c> starts a comment; a NUL ends the text.
/// </summary>
internal sealed class VmdkDescriptor
{
    /// <summary>Descriptors larger than this are refused (as QEMU does).</summary>
    public const int MaxBytes = 1 << 20;

    /// <summary>More extent lines than this are refused (a 2 GiB split of a 64 TiB disk needs 32768).</summary>
    public const int MaxExtents = 65536;

    public const uint NoParent = 0xFFFFFFFF;

    private static readonly string[] Accesses = ["RW", "RDONLY", "NOACCESS"];

    public uint Cid { get; private init; } = NoParent;
    public uint ParentCid { get; private init; } = NoParent;
    public string? CreateType { get; private init; }
    public string? ParentFileNameHint { get; private init; }
    public IReadOnlyList<VmdkExtentLine> Extents { get; private init; } = [];
    public IReadOnlyDictionary<string, string> Ddb { get; private init; } = new Dictionary<string, string>();

    /// <summary>True when <paramref name="head"/> looks like a descriptor: the first line that is neither blank nor a comment is <c>version=…</c>.</summary>
    public static bool Looks(ReadOnlySpan<byte> head)
    {
        int i = 0;
        while (i < head.Length)
        {
            int nl = head[i..].IndexOf((byte)'\n');
            var line = nl < 0 ? head[i..] : head[i..(i + nl)];
            var t = line.Trim(" \t\r"u8);
            if (t.Length > 0 && t[0] != (byte)'#')
            {
                return t.StartsWith("version"u8) && t.IndexOf((byte)'=') > 0 && t.IndexOf((byte)'=') < 10;
            }

            if (nl < 0)
            {
                break;
            }

            i += nl + 1;
        }

        return false;
    }

    public static bool TryParse(ReadOnlySpan<byte> bytes, out VmdkDescriptor descriptor, out string? error)
    {
        descriptor = new VmdkDescriptor();
        int nul = bytes.IndexOf((byte)0);
        if (nul >= 0)
        {
            bytes = bytes[..nul];
        }

        if (bytes.Length > MaxBytes)
        {
            error = $"descriptor: {bytes.Length} bytes, more than the {MaxBytes} allowed";
            return false;
        }

        string text;
        try
        {
            text = new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            error = "descriptor: the text is not UTF-8";
            return false;
        }

        uint cid = NoParent, parentCid = NoParent;
        string? createType = null, parentHint = null;
        bool sawVersion = false;
        var extents = new List<VmdkExtentLine>();
        var ddb = new Dictionary<string, string>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            string line = raw.Trim(' ', '\t', '\r');
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            string? first = FirstWord(line);
            if (first is not null && Accesses.Contains(first))
            {
                if (extents.Count >= MaxExtents)
                {
                    error = $"descriptor: more than {MaxExtents} extent lines";
                    return false;
                }

                if (!TryParseExtent(line, out var extent, out string? why))
                {
                    error = $"descriptor line {lineNo}: {why}";
                    return false;
                }

                extents.Add(extent);
                continue;
            }

            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                error = $"descriptor line {lineNo}: '{Shorten(line)}' is neither key=value nor an extent line (ACCESS SECTORS TYPE \"FILE\" [OFFSET])";
                return false;
            }

            string key = line[..eq].Trim();
            string value = Unquote(line[(eq + 1)..].Trim());
            switch (key)
            {
                case "version":
                    if (value is not ("1" or "2" or "3"))
                    {
                        error = $"descriptor line {lineNo}: version={value} is not supported; allowed: 1, 2, 3";
                        return false;
                    }

                    sawVersion = true;
                    break;
                case "CID":
                case "parentCID":
                    if (!uint.TryParse(value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out uint v))
                    {
                        error = $"descriptor line {lineNo}: {key}={Shorten(value)} is not a 32-bit hexadecimal number";
                        return false;
                    }

                    if (key == "CID")
                    {
                        cid = v;
                    }
                    else
                    {
                        parentCid = v;
                    }

                    break;
                case "createType":
                    createType = value;
                    break;
                case "parentFileNameHint":
                    parentHint = value;
                    break;
                default:
                    if (key.StartsWith("ddb.", StringComparison.Ordinal))
                    {
                        ddb[key[4..]] = value;
                    }

                    break;
            }
        }

        if (!sawVersion)
        {
            error = "descriptor: no version= line";
            return false;
        }

        descriptor = new VmdkDescriptor
        {
            Cid = cid,
            ParentCid = parentCid,
            CreateType = createType,
            ParentFileNameHint = parentHint,
            Extents = extents,
            Ddb = ddb,
        };
        error = null;
        return true;
    }

    private static bool TryParseExtent(string line, out VmdkExtentLine extent, out string? error)
    {
        extent = null!;
        var parts = new List<string>();
        int i = 0;
        while (i < line.Length)
        {
            if (line[i] is ' ' or '\t')
            {
                i++;
                continue;
            }

            if (line[i] == '"')
            {
                int close = line.IndexOf('"', i + 1);
                if (close < 0)
                {
                    error = "extent line: the file name has no closing quote";
                    return false;
                }

                parts.Add(line[(i + 1)..close]);
                i = close + 1;
                continue;
            }

            int end = i;
            while (end < line.Length && line[end] is not (' ' or '\t'))
            {
                end++;
            }

            parts.Add(line[i..end]);
            i = end;
        }

        if (parts.Count < 3)
        {
            error = $"extent line '{Shorten(line)}': need ACCESS SECTORS TYPE \"FILE\" [OFFSET]";
            return false;
        }

        if (!long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long sectors) || sectors > long.MaxValue / 512)
        {
            error = $"extent line: sectors '{Shorten(parts[1])}' is not a number of sectors";
            return false;
        }

        string type = parts[2].ToUpperInvariant();
        string? file = parts.Count > 3 ? parts[3] : null;
        long offset = 0;
        if (parts.Count > 4 && (!long.TryParse(parts[4], NumberStyles.None, CultureInfo.InvariantCulture, out offset) || offset > long.MaxValue / 512))
        {
            error = $"extent line: offset '{Shorten(parts[4])}' is not a number of sectors";
            return false;
        }

        if (type != "ZERO" && string.IsNullOrEmpty(file))
        {
            error = $"extent line: a {type} extent needs a file name";
            return false;
        }

        extent = new VmdkExtentLine(parts[0], sectors, type, type == "ZERO" ? null : file, offset);
        error = null;
        return true;
    }

    private static string? FirstWord(string line)
    {
        int sp = line.IndexOfAny([' ', '\t']);
        return sp < 0 ? null : line[..sp];
    }

    private static string Unquote(string value)
        => value.Length >= 2 && value[0] == '"' && value[^1] == '"' ? value[1..^1] : value;

    private static string Shorten(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
