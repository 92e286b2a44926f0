using UrlDisk.Sources.Ftp;
using UrlDisk.Specs;

namespace UrlDisk.Tests.Ftp;

public class FtpSettingsTests
{
    private static FtpSettings Parse(string driver, params (string Key, string Value)[] options)
        => FtpSettings.FromNode(driver, new OptionTree(options.Select(o => KeyValuePair.Create(o.Key, o.Value))));

    [Fact]
    public void Anonymous_relative_path_and_default_port()
    {
        var s = Parse("ftp", ("url", "ftp://example.org/pub/disk%20a.img"));
        Assert.Equal("anonymous", s.User);
        Assert.Equal("pub/disk a.img", s.Path);
        Assert.Equal(21, s.Port);
        Assert.Equal(FtpTlsMode.None, s.Tls);
    }

    [Fact]
    public void Credentials_are_percent_decoded_and_kept_out_of_the_display_url()
    {
        var s = Parse("ftps", ("url", "ftps://us%40er:p%3Ass@example.org:2121//abs/x.img"));
        Assert.Equal("us@er", s.User);
        Assert.Equal("p:ss", s.Password);
        Assert.Equal("/abs/x.img", s.Path);
        Assert.Equal(2121, s.Port);
        Assert.Equal(FtpTlsMode.Implicit, s.Tls);
        Assert.DoesNotContain("p%3Ass", s.DisplayUrl, StringComparison.Ordinal);
    }

    [Fact]
    public void Ftps_defaults_to_port_990_and_explicit_tls_is_an_ftp_option()
    {
        Assert.Equal(990, Parse("ftps", ("url", "ftps://h/x")).Port);
        Assert.Equal(FtpTlsMode.Explicit, Parse("ftp", ("url", "ftp://h/x"), ("tls", "explicit")).Tls);
        var e = Assert.Throws<OptionException>(() => Parse("ftps", ("url", "ftps://h/x"), ("tls", "explicit")));
        Assert.Contains("tls=explicit", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://h/x", "not an FTP URL")]
    [InlineData("ftp://h/", "names no file")]
    [InlineData("ftps://h/x", "does not match")]
    public void Bad_urls_are_named(string url, string expected)
    {
        var e = Assert.Throws<OptionException>(() => Parse("ftp", ("url", url)));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Password_file_overrides_url_password_without_its_newline()
    {
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "s3cret\n");
            var s = Parse("ftp", ("url", "ftp://a:b@h/x"), ("username", "bob"), ("password-file", file));
            Assert.Equal("bob", s.User);
            Assert.Equal("s3cret", s.Password);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Ipv6_literal_host_loses_its_brackets()
    {
        var s = Parse("ftp", ("url", "ftp://[::1]:2121/x.img"));
        Assert.Equal("::1", s.Host);
        Assert.Equal(2121, s.Port);
    }

    [Fact]
    public void Username_option_without_any_password_sends_an_empty_one()
        => Assert.Equal("", Parse("ftp", ("url", "ftp://h/x"), ("username", "bob")).Password);

    [Fact]
    public void Quoted_replies_lose_the_user_name_and_password_whatever_their_case()
    {
        var s = Parse("ftp", ("url", "ftp://Bob:Pa55word@h/x"));
        Assert.Equal("530 user *** password *** refused (***)", s.WithoutCredentials("530 user bob password PA55WORD refused (Pa55word)"));
    }

    [Fact]
    public void Anonymous_defaults_are_no_secret_and_stay_in_quoted_replies()
    {
        var s = Parse("ftp", ("url", "ftp://h/x"));
        Assert.Equal("530 anonymous logins are off", s.WithoutCredentials("530 anonymous logins are off"));
    }

    [Theory]
    [InlineData("ftp://h:0/x", "port 0")]
    [InlineData("ftp://h/a%00b", "NUL")]
    [InlineData("ftp://h:99999/x", "ftp://host[:port]/path")]
    public void Bad_urls_name_what_is_wrong(string url, string named)
    {
        var e = Assert.Throws<OptionException>(() => Parse("ftp", ("url", url)));
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
        Assert.Equal(e.Message, Redact.Spec(e.Message));
    }
}
