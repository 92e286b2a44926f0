using System.Globalization;

namespace UrlDisk.Specs;

/// <summary>Sizes as QEMU reads them: a number with an optional suffix T, G, M, K/k (powers of 1024) or b (bytes).</summary>
internal static class SizeParser
{
    public static bool TryParse(ReadOnlySpan<char> text, out long bytes)
    {
        bytes = 0;
        text = text.Trim();
        if (text.IsEmpty)
        {
            return false;
        }

        long multiplier = 1;
        char last = text[^1];
        if (!char.IsAsciiDigit(last) && last != '.')
        {
            multiplier = last switch
            {
                'b' or 'B' => 1,
                'k' or 'K' => 1L << 10,
                'm' or 'M' => 1L << 20,
                'g' or 'G' => 1L << 30,
                't' or 'T' => 1L << 40,
                'p' or 'P' => 1L << 50,
                'e' or 'E' => 1L << 60,
                _ => 0,
            };
            if (multiplier == 0)
            {
                return false;
            }

            text = text[..^1];
        }

        if (text.IsEmpty || text[0] == '-' || text[0] == '+')
        {
            return false;
        }

        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long whole))
        {
            if (whole > long.MaxValue / multiplier)
            {
                return false;
            }

            bytes = whole * multiplier;
            return true;
        }

        // QEMU accepts fractions with a suffix ("1.5G"); the result must be a whole number of bytes.
        if (multiplier > 1 && decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal fraction))
        {
            decimal value = fraction * multiplier;
            if (value > long.MaxValue || value != decimal.Truncate(value))
            {
                return false;
            }

            bytes = (long)value;
            return true;
        }

        return false;
    }

    /// <summary>
    /// The error for a <paramref name="text"/> that <see cref="TryParse"/> refused, naming <paramref name="what"/>, the
    /// value and what is allowed: <c>option 'size': '9E' is too large; the largest size is 9223372036854775807 bytes</c>.
    /// </summary>
    public static string Error(string what, string text) => $"{what}: '{text}' {Why(text.AsSpan().Trim())}";

    private static string Why(ReadOnlySpan<char> text)
    {
        const string Form = "use a number of bytes with an optional suffix T, G, M, K/k or b (bytes), such as 256k";
        if (text.IsEmpty)
        {
            return "is empty; " + Form;
        }

        if (text[0] == '-' && text.Length > 1 && (char.IsAsciiDigit(text[1]) || text[1] == '.'))
        {
            return "is negative; sizes are 0 or more";
        }

        var number = char.IsAsciiDigit(text[^1]) || text[^1] == '.' ? text : text[..^1];
        bool hasSuffix = number.Length < text.Length;
        if (number.IsEmpty || number.ContainsAnyExcept("0123456789.") || number.Count('.') > 1
            || (hasSuffix && "bBkKmMgGtTpPeE".IndexOf(text[^1]) < 0))
        {
            return "is not a size; " + Form;
        }

        if (number.Contains('.') && !hasSuffix)
        {
            return "is not a whole number of bytes; a fraction needs a suffix, as in 1.5G";
        }

        return decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal d) && d <= long.MaxValue && number.Contains('.')
            ? "is not a whole number of bytes"
            : $"is too large; the largest size is {long.MaxValue} bytes (8E - 1)";
    }

    /// <summary>
    /// Human form as qemu-img prints it ("64 MiB", "1.25 MiB", "324 KiB", "0.977 KiB"): three significant digits, in the
    /// largest unit the value reaches 1000/1024 of.
    /// </summary>
    public static string Format(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        int u = bytes <= 0 ? 0 : Math.Min(Math.ILogB(bytes * 1.024) / 10, units.Length - 1);
        double v = bytes / Math.Pow(1024, u);
        return string.Create(CultureInfo.InvariantCulture, $"{v.ToString("G3", CultureInfo.InvariantCulture)} {units[u]}");
    }
}
