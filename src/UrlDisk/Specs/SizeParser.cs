using System.Globalization;

namespace UrlDisk.Specs;

/// <summary>Sizes as QEMU reads them: a number with an optional suffix T, G, M, K/k (powers of 1024) or b (bytes).</summary>
public static class SizeParser
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

    /// <summary>Human form as qemu-img prints it ("1 GiB", "512 MiB", "1.5 KiB").</summary>
    public static string Format(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }

        return u == 0 ? $"{bytes} B" : string.Create(CultureInfo.InvariantCulture, $"{Math.Round(v, 3):0.###} {units[u]}");
    }
}
