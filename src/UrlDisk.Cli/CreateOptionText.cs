using UrlDisk.Specs;

namespace UrlDisk.Cli;

/// <summary>
/// Splits qemu-img's <c>-o key=value,…</c> into the keys a verb handles itself (size, preallocation, backing_file…)
/// and the rest, which goes to the format's own option parser.
/// </summary>
internal static class CreateOptionText
{
    public static (string Others, Dictionary<string, string> Taken) Take(string text, params string[] keys)
    {
        var taken = new Dictionary<string, string>(StringComparer.Ordinal);
        if (text.Length == 0)
        {
            return ("", taken);
        }

        var rest = new List<string>();
        foreach (var (key, value) in SpecParser.ParseKeyValue(text).Pairs)
        {
            if (keys.Contains(key))
            {
                taken[key] = value;
            }
            else
            {
                rest.Add($"{key}={value.Replace(",", ",,", StringComparison.Ordinal)}");
            }
        }

        return (string.Join(',', rest), taken);
    }
}
