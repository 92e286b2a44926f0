namespace UrlDisk.Sources.Http;

/// <summary><c>Name: value</c> header lines from options and header scripts: checked so no line can smuggle another header in.</summary>
internal static class HttpHeaderLines
{
    /// <summary>Splits a checked line into its name and value.</summary>
    public static (string Name, string Value) Split(string line)
    {
        int colon = line.IndexOf(':', StringComparison.Ordinal);
        return (line[..colon].Trim(), line[(colon + 1)..].Trim());
    }

    /// <summary>Throws an <see cref="OptionException"/> that names <paramref name="what"/> (never the value: it may be a secret) unless the line is <c>Name: value</c>.</summary>
    public static void Check(string line, string what)
    {
        if (Problem(line) is { } problem)
        {
            throw new OptionException($"{what}: {problem}; give NAME: VALUE");
        }
    }

    /// <summary>What is wrong with a line, or null.</summary>
    public static string? Problem(string line)
    {
        int colon = line.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            return "a header has no name before ':'";
        }

        string name = line[..colon].Trim();
        if (name.Length == 0 || !name.All(IsTokenChar))
        {
            return "a header name may hold only letters, digits and !#$%&'*+-.^_`|~";
        }

        if (line.Any(c => c is '\r' or '\n' or '\0'))
        {
            return "a header may not hold a line break or NUL";
        }

        if (name.Equals("Host", StringComparison.OrdinalIgnoreCase) || name.Equals("Range", StringComparison.OrdinalIgnoreCase)
            || name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
        {
            return $"the {name} header is UrlDisk's own and cannot be set";
        }

        return null;
    }

    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);
}
