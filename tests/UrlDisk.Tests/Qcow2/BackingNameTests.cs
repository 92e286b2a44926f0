using UrlDisk.Opening;

namespace UrlDisk.Tests.Qcow2;

public class BackingNameTests
{
    [Theory]
    [InlineData("mid.qcow2", "http://h/dir/top.qcow2", "http://h/dir/mid.qcow2")]
    [InlineData("../base.qcow2", "https://h/a/b/top.qcow2", "https://h/a/b/../base.qcow2")]
    [InlineData("mid.qcow2", "http://h", "http://h/mid.qcow2")]
    [InlineData("mid.qcow2", "file:///srv/img/top.qcow2", "file:///srv/img/mid.qcow2")]
    [InlineData("mid.qcow2", "/srv/img/top.qcow2", "/srv/img/mid.qcow2")]
    [InlineData("sub/mid.qcow2", "img/top.qcow2", "img/sub/mid.qcow2")]
    [InlineData("mid.qcow2", "top.qcow2", "mid.qcow2")]
    [InlineData("/abs/base.raw", "http://h/dir/top.qcow2", "/abs/base.raw")]
    [InlineData("ftp://other/base.raw", "http://h/dir/top.qcow2", "ftp://other/base.raw")]
    [InlineData("json:{\"file.filename\":\"b.raw\"}", "http://h/dir/top.qcow2", "json:{\"file.filename\":\"b.raw\"}")]
    public void Resolves_like_qemu(string name, string overlay, string expected)
        => Assert.Equal(expected, BackingName.Resolve(name, overlay));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("json:{\"file.filename\":\"top.qcow2\"}")]
    public void Relative_name_without_a_location_is_refused(string? overlay)
    {
        var e = Assert.Throws<ImageFormatException>(() => BackingName.Resolve("mid.qcow2", overlay));
        Assert.Contains("relative backing file name", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://h/x", true)]
    [InlineData("a:b/c", true)]
    [InlineData("dir/a:b", false)]
    [InlineData("plain.qcow2", false)]
    public void Protocol_is_a_colon_before_any_slash(string name, bool expected)
        => Assert.Equal(expected, BackingName.HasProtocol(name));

    [Theory]
    [InlineData("/etc/passwd", true)]
    [InlineData("relative.raw", true)]
    [InlineData("file:///etc/passwd", true)]
    [InlineData("http://h/base.raw", false)]
    [InlineData("json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"/etc/passwd\"}}", true)]
    [InlineData("json:{\"file.filename\":\"/etc/passwd\"}", true)]
    [InlineData("json:{\"driver\":\"raw\",\"file\":{\"driver\":\"http\",\"url\":\"http://h/b\"}}", false)]
    public void Local_locations_are_recognised(string location, bool local)
        => Assert.Equal(local, BackingName.IsLocal(location));
}
