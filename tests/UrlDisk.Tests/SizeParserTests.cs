using UrlDisk.Specs;

namespace UrlDisk.Tests;

public class SizeParserTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("512", 512L)]
    [InlineData("512b", 512L)]
    [InlineData("64k", 65536L)]
    [InlineData("64K", 65536L)]
    [InlineData("1M", 1048576L)]
    [InlineData("2G", 2147483648L)]
    [InlineData("1T", 1099511627776L)]
    [InlineData("1.5K", 1536L)]
    public void Parses_qemu_sizes(string text, long expected)
    {
        Assert.True(SizeParser.TryParse(text, out long v));
        Assert.Equal(expected, v);
    }

    [Theory]
    [InlineData("")]
    [InlineData("k")]
    [InlineData("-1")]
    [InlineData("12x")]
    [InlineData("1.3b")]
    [InlineData("99999999999999999999")]
    public void Rejects_bad_sizes(string text) => Assert.False(SizeParser.TryParse(text, out _));

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("-1", "is negative")]
    [InlineData("-18446744073709551616", "is negative")]
    [InlineData("18446744073709551616", "is too large; the largest size is 9223372036854775807")]
    [InlineData("8E", "is too large")]
    [InlineData("1.5", "is not a whole number of bytes; a fraction needs a suffix")]
    [InlineData("1.3b", "is not a whole number of bytes")]
    [InlineData("1e30", "is not a size; use a number of bytes")]
    [InlineData("12x", "is not a size")]
    public void Errors_say_why_a_size_was_refused(string text, string why)
    {
        Assert.False(SizeParser.TryParse(text, out _));
        Assert.Equal($"option 'size': '{text}' {why}", SizeParser.Error("option 'size'", text)[..($"option 'size': '{text}' ".Length + why.Length)]);
    }

    /// <summary>qemu-img's size_to_str: three significant digits, the unit switching at 1000 of the one below.</summary>
    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(999, "999 B")]
    [InlineData(1000, "0.977 KiB")]
    [InlineData(8192, "8 KiB")]
    [InlineData(331776, "324 KiB")]
    [InlineData(1314816, "1.25 MiB")]
    [InlineData(1265664, "1.21 MiB")]
    [InlineData(67108864, "64 MiB")]
    [InlineData(67125248, "64 MiB")]
    [InlineData(1L << 40, "1 TiB")]
    public void Formats_as_qemu_img_prints_sizes(long bytes, string expected) => Assert.Equal(expected, SizeParser.Format(bytes));
}
