using UrlDisk.Sources.Nbd;

namespace UrlDisk.Tests.Nbd;

public class NbdAddressTests
{
    [Theory]
    [InlineData("nbd://127.0.0.1:10810/disk", "127.0.0.1", 10810, "disk")]
    [InlineData("nbd://host/", "host", 10809, "")]
    [InlineData("nbd://host", "host", 10809, "")]
    [InlineData("nbd+tcp://[::1]:99/a%20b", "::1", 99, "a b")]
    [InlineData("nbd://[::1]/x", "::1", 10809, "x")]
    public void Tcp_urls_give_host_port_and_export(string url, string host, int port, string export)
    {
        var a = NbdAddress.Parse(url);
        Assert.Equal((host, port, (string?)null, export), (a.Host, a.Port, a.SocketPath, a.ExportName));
    }

    [Fact]
    public void Unix_urls_give_the_socket_and_export()
    {
        var a = NbdAddress.Parse("nbd+unix:///my%2Fdisk?socket=/tmp/s.sock");
        Assert.Equal(("/tmp/s.sock", "my/disk"), (a.SocketPath, a.ExportName));
        Assert.Equal("nbd+unix:///my%2Fdisk?socket=/tmp/s.sock", a.Display);
    }

    [Theory]
    [InlineData("nbd+unix:///x", "socket=")]
    [InlineData("nbd+unix://host/x?socket=/s", "takes no host")]
    [InlineData("nbd+unix:///x?sock=/s", "unknown query parameter 'sock'")]
    [InlineData("nbd://host:0/x", "port '0'")]
    [InlineData("nbd://host:99999/x", "port '99999'")]
    [InlineData("nbd://:10809/x", "names no host")]
    [InlineData("nbd://host/x?socket=/s", "no query parameters")]
    [InlineData("nbd://user:secret@host/x", "no log-in")]
    [InlineData("nbd://host/a%00b", "NUL")]
    public void Bad_urls_name_what_is_wrong(string url, string message)
    {
        var e = Assert.Throws<OptionException>(() => NbdAddress.Parse(url));
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain("secret", e.Message);
    }

    [Fact]
    public void Nbds_urls_ask_for_tls_with_libnbds_query_parameters()
    {
        var a = NbdAddress.Parse("nbds://127.0.0.1:10810/disk?tls-certificates=/etc/pki/nbd&tls-hostname=server.example&tls-verify-peer=false");
        Assert.Equal(("127.0.0.1", 10810, "disk"), (a.Host, a.Port, a.ExportName));
        Assert.Equal(new NbdTls("/etc/pki/nbd", null, "server.example", false), a.Tls);
        Assert.Equal("nbds://127.0.0.1:10810/disk", a.Display);

        var u = NbdAddress.Parse("nbds+unix:///x?socket=/tmp/s&tls-ca=/tmp/ca.pem");
        Assert.Equal(("/tmp/s", new NbdTls(null, "/tmp/ca.pem", null, true)), (u.SocketPath, u.Tls));
        Assert.Equal("nbds+unix:///x?socket=/tmp/s", u.Display);

        Assert.Equal(NbdTls.Default, NbdAddress.Parse("nbds://host/").Tls);
        Assert.Null(NbdAddress.Parse("nbd://host/").Tls);
    }

    [Theory]
    [InlineData("nbd://host/x?tls-certificates=/d", "use nbds://")]
    [InlineData("nbd+unix:///x?socket=/s&tls-ca=/c", "use nbds://")]
    [InlineData("nbds://host/x?tls-psk-file=/k", "unknown query parameter 'tls-psk-file'")]
    [InlineData("nbds://host/x?socket=/s", "takes only the tls-* query parameters")]
    [InlineData("nbds://host/x?tls-verify-peer=maybe", "'tls-verify-peer' is 'maybe'")]
    [InlineData("nbds://host/x?tls-ca=/a&tls-certificates=/b", "give one")]
    [InlineData("nbds://host/x?tls-ca=/a&tls-ca=/b", "given twice")]
    [InlineData("nbds+unix:///x?tls-ca=/a", "socket=")]
    public void Bad_tls_urls_name_what_is_wrong(string url, string message)
    {
        var e = Assert.Throws<OptionException>(() => NbdAddress.Parse(url));
        Assert.Contains(message, e.Message);
    }
}
