using System.Text.RegularExpressions;

namespace UrlDisk.Specs;

/// <summary>Removes credentials from URLs and specs before they reach any message, log or output.</summary>
internal static partial class Redact
{
    /// <summary><c>https://user:pw@host/x</c> → <c>https://host/x</c>.</summary>
    public static string Url(string url) => UserInfo().Replace(url, "$1");

    /// <summary>Redacts every URL in a spec and the values of password-like keys.</summary>
    public static string Spec(string spec)
    {
        string s = UserInfo().Replace(spec, "$1");
        return SecretValue().Replace(s, m => m.Groups[1].Value + (m.Groups[2].Value.StartsWith('"') ? "\"***\"" : "***"));
    }

    // Greedy up to the last '@' before the path, as URL parsers read it: a password may hold a raw '@'.
    [GeneratedRegex(@"([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s""?#]*@")]
    private static partial Regex UserInfo();

    // The whole value: a JSON string up to its closing quote (commas, braces and \" inside), or in key=value syntax
    // everything up to a single comma (",," is a literal comma in the value). Hiding too much beats showing a secret.
    // Headers (header=, header.N=, "header": [...]) may carry tokens: a JSON array's whole value is hidden too.
    [GeneratedRegex(@"((?:password|proxy-password|cookie|header(?:\.\d+)?)""?\s*[:=]\s*)(\[(?:[^\]""]|""(?:[^""\\]|\\.)*"")*\]|""(?:[^""\\]|\\.)*""|(?:,,|[^,])*)", RegexOptions.IgnoreCase)]
    private static partial Regex SecretValue();
}
