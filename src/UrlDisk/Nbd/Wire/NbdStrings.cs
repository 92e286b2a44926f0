using System.Text;

namespace UrlDisk.Nbd.Wire;

/// <summary>NBD strings: UTF-8, no NUL, at most 4096 bytes.</summary>
internal static class NbdStrings
{
    public const int MaxLength = 4096;

    private static readonly UTF8Encoding s_strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static bool TryDecode(ReadOnlySpan<byte> bytes, out string value)
    {
        value = "";
        if (bytes.Length > MaxLength || bytes.Contains((byte)0))
        {
            return false;
        }

        try
        {
            value = s_strict.GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    public static int ByteCount(string s) => Encoding.UTF8.GetByteCount(s);

    public static int Encode(string s, Span<byte> destination) => Encoding.UTF8.GetBytes(s, destination);

    /// <summary>Cuts a message so it fits the protocol's string limit (on a character boundary).</summary>
    public static string Truncate(string s, int maxBytes = MaxLength)
    {
        if (ByteCount(s) <= maxBytes)
        {
            return s;
        }

        int n = Math.Min(s.Length, maxBytes);
        while (n > 0 && ByteCount(s[..n]) > maxBytes)
        {
            n--;
        }

        if (n > 0 && char.IsHighSurrogate(s[n - 1]))
        {
            n--;
        }

        return s[..n];
    }
}
