using System.Globalization;

namespace UrlDisk.Sources.Http;

/// <summary>A parsed <c>Content-Range</c> header: <c>bytes first-last/total</c> or <c>bytes */total</c> (RFC 9110 §14.4).</summary>
internal readonly record struct ContentRange(long? First, long? Last, long? Total)
{
    public static bool TryParse(ReadOnlySpan<char> text, out ContentRange range)
    {
        range = default;
        text = text.Trim();
        if (!text.StartsWith("bytes", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        text = text[5..].TrimStart();
        int slash = text.IndexOf('/');
        if (slash < 0)
        {
            return false;
        }

        var span = text[..slash].Trim();
        var totalText = text[(slash + 1)..].Trim();
        long? total = null;
        if (totalText is not "*")
        {
            if (!long.TryParse(totalText, NumberStyles.None, CultureInfo.InvariantCulture, out long t))
            {
                return false;
            }

            total = t;
        }

        if (span is "*")
        {
            range = new ContentRange(null, null, total);
            return total is not null;
        }

        int dash = span.IndexOf('-');
        if (dash <= 0
            || !long.TryParse(span[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out long first)
            || !long.TryParse(span[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out long last)
            || last < first
            || (total is { } tt && last >= tt))
        {
            return false;
        }

        range = new ContentRange(first, last, total);
        return true;
    }
}
