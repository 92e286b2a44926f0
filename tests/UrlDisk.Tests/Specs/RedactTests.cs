using UrlDisk.Specs;

namespace UrlDisk.Tests.Specs;

public class RedactTests
{
    [Theory]
    [InlineData("https://user:password@vsphere.example.com/folder/x.vmdk?dcPath=D", "https://vsphere.example.com/folder/x.vmdk?dcPath=D")]
    [InlineData("http://bob@h:8080/x", "http://h:8080/x")]
    [InlineData("ftp://anonymous:me%40example.com@ftp.example.com/pub", "ftp://ftp.example.com/pub")]
    [InlineData("http://h/x", "http://h/x")]
    [InlineData("https://u:a,b@h/x", "https://h/x")]
    [InlineData("http://h/x?next=a@b", "http://h/x?next=a@b")]
    [InlineData("/local/path@2x.img", "/local/path@2x.img")]
    public void Url_removes_user_info_only(string url, string expected) => Assert.Equal(expected, Redact.Url(url));

    [Fact]
    public void Url_removes_a_password_with_an_unescaped_at_sign()
    {
        // Browsers and curl take the last '@' before the path as the end of the user info.
        string redacted = Redact.Url("https://user:p@ss@host.example/x.img");
        Assert.Equal("https://host.example/x.img", redacted);
    }

    [Fact]
    public void Spec_removes_credentials_from_every_url_and_secret_values()
    {
        const string spec = """json:{"file.driver":"https","file.url":"https://user:topsecret@vsphere.example.com/x.vmdk","file.cookie":"vmware_soap_session=abc123","backing.file.url":"http://u:pw2@b.example/y","file.password":"pw3"}""";
        string r = Redact.Spec(spec);
        foreach (var secret in new[] { "topsecret", "abc123", "pw2", "pw3", "user:" })
        {
            Assert.DoesNotContain(secret, r, StringComparison.Ordinal);
        }

        Assert.Contains("https://vsphere.example.com/x.vmdk", r, StringComparison.Ordinal);
        Assert.Contains("http://b.example/y", r, StringComparison.Ordinal);
    }

    [Fact]
    public void Spec_hides_key_value_secrets_but_keeps_file_paths()
    {
        string r = Redact.Spec("driver=raw,file.url=http://h/x,file.cookie=sess=1,file.password-file=/run/pw.txt,file.proxy-password=pp");
        Assert.DoesNotContain("sess=1", r, StringComparison.Ordinal);
        Assert.DoesNotContain("=pp", r, StringComparison.Ordinal);
        Assert.Contains("/run/pw.txt", r, StringComparison.Ordinal);
        Assert.Contains("http://h/x", r, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("driver=raw,file.driver=http,file.url=http://h/x,file.cookie=x=1,,sid=SECRET", "file.url=http://h/x")]
    [InlineData("driver=raw,file.driver=http,file.cookie=a=1,,,,sid=SECRET,file.url=http://h/x", "file.url=http://h/x")]
    [InlineData("""json:{"file.cookie":"x=1,sid=SECRET","file.url":"http://h/x"}""", "\"file.url\":\"http://h/x\"")]
    [InlineData("""json:{"file":{"cookie":"x=1, sid=SECRET}","url":"http://h/x"}}""", "\"url\":\"http://h/x\"")]
    [InlineData("""json:{"file.password":"p\"w,SECRET","file.url":"http://h/x"}""", "\"file.url\":\"http://h/x\"")]
    public void Spec_hides_the_whole_secret_value_including_commas(string spec, string kept)
    {
        string r = Redact.Spec(spec);
        Assert.DoesNotContain("SECRET", r, StringComparison.Ordinal);
        Assert.Contains(kept, r, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("driver=raw,file.driver=http,file.header=Authorization: Bearer SECRET,file.url=http://h/x", "file.url=http://h/x")]
    [InlineData("driver=raw,file.header.0=X-Key: SECRET,file.header.1=X-Other: SECRET,file.url=http://h/x", "file.url=http://h/x")]
    [InlineData("""json:{"file.header":["X-Key: SECRET","X-Other: a,SECRET"],"file.url":"http://h/x"}""", "\"file.url\":\"http://h/x\"")]
    [InlineData("""json:{"file":{"header":"X-Key: SECRET","url":"http://h/x"}}""", "\"url\":\"http://h/x\"")]
    public void Spec_hides_header_values(string spec, string kept)
    {
        string r = Redact.Spec(spec);
        Assert.DoesNotContain("SECRET", r, StringComparison.Ordinal);
        Assert.Contains(kept, r, StringComparison.Ordinal);
    }

    [Fact]
    public void Repeated_header_options_become_numbered_values()
    {
        var tree = SpecParser.ParseKeyValue("driver=raw,file.header=A: 1,file.header=B: 2,file.url=http://h/x");
        Assert.Equal("A: 1", tree["file.header.0"]);
        Assert.Equal("B: 2", tree["file.header.1"]);
    }
}
