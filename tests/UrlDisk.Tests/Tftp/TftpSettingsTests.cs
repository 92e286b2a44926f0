using UrlDisk.Sources.Tftp;
using UrlDisk.Specs;

namespace UrlDisk.Tests.Tftp;

public class TftpSettingsTests
{
    private static TftpSettings Parse(params (string Key, string Value)[] options)
        => TftpSettings.FromNode(new OptionTree(options.Select(o => KeyValuePair.Create(o.Key, o.Value))));

    [Fact]
    public void Defaults_and_path()
    {
        var s = Parse(("url", "tftp://10.0.0.1/boot/disk%20a.img"));
        Assert.Equal(69, s.Port);
        Assert.Equal("boot/disk a.img", s.FileName);
        Assert.Equal(1428, s.BlockSize);
        Assert.True(s.RequestSize);
    }

    [Theory]
    [InlineData("blksize", "7", "from 8 to 65464")]
    [InlineData("blksize", "65465", "from 8 to 65464")]
    [InlineData("windowsize", "0", "from 1 to 65535")]
    [InlineData("timeout", "0", "seconds")]
    public void Bad_option_values_name_the_allowed_range(string key, string value, string expected)
    {
        var e = Assert.Throws<OptionException>(() => Parse(("url", "tftp://h/x"), (key, value)));
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("tftp://u:p@h/x", "log-in")]
    [InlineData("tftp://h/", "names no file")]
    [InlineData("ftp://h/x", "not a TFTP URL")]
    public void Bad_urls(string url, string expected)
    {
        var e = Assert.Throws<OptionException>(() => Parse(("url", url)));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("u:p", e.Message, StringComparison.Ordinal);
    }
}
