using UrlDisk.Sources.Nbd;
using UrlDisk.Specs;

namespace UrlDisk.Tests.Nbd;

/// <summary>The nbd driver's options in QEMU's spellings (server.*, legacy host/port/path, export) and the tls-* ones.</summary>
public class NbdSpecTests
{
    private static NbdAddress Of(params string[] pairs)
        => NbdSpec.AddressOf(new OptionTree(pairs.Select(p => p.Split('=', 2)).Select(kv => KeyValuePair.Create(kv[0], kv[1]))));

    [Fact]
    public void Server_options_and_the_legacy_keys_give_the_same_addresses_as_urls()
    {
        Assert.Equal(NbdAddress.Parse("nbd://127.0.0.1:10810/x"), Of("server.type=inet", "server.host=127.0.0.1", "server.port=10810", "export=x"));
        Assert.Equal(NbdAddress.Parse("nbd://h/"), Of("server.type=inet", "server.host=h"));
        Assert.Equal(NbdAddress.Parse("nbd+unix:///x?socket=/tmp/s"), Of("server.type=unix", "server.path=/tmp/s", "export=x"));
        Assert.Equal(NbdAddress.Parse("nbd://[::1]:99/"), Of("host=::1", "port=99"));
        Assert.Equal(NbdAddress.Parse("nbd+unix:///e?socket=/s"), Of("path=/s", "export=e"));
        Assert.Equal(NbdAddress.Parse("nbd://h/e"), Of("url=nbd://h/e"));
    }

    [Fact]
    public void Tls_options_turn_tls_on_for_any_spelling()
    {
        Assert.Equal(new NbdTls(null, "/ca.pem", null, true), Of("server.type=inet", "server.host=h", "tls-ca=/ca.pem").Tls);
        Assert.Equal(new NbdTls("/d", null, "name", true), Of("url=nbd://h/", "tls-certificates=/d", "tls-hostname=name").Tls);
        Assert.Equal(NbdTls.Default, Of("host=h", "tls=on").Tls);
        Assert.Equal(new NbdTls("/d", null, null, true), Of("url=nbds://h/?tls-certificates=/d").Tls);
        Assert.Null(Of("host=h").Tls);
    }

    [Theory]
    [InlineData("tls-creds=tls0", "tls-certificates=DIR")]
    [InlineData("server.type=inet", "'server.host' is required")]
    [InlineData("server.host=h", "'server.type' is required")]
    [InlineData("server.type=vsock,server.cid=3", "unknown option 'server.cid'")]
    [InlineData("server.type=fd", "use inet or unix")]
    [InlineData("server.type=inet,server.host=h,server.numeric=on", "unknown option 'server.numeric'")]
    [InlineData("server.type=unix,server.host=h", "belong to server.type=inet")]
    [InlineData("server.type=inet,server.host=h,host=h", "cannot be combined with server.*")]
    [InlineData("url=nbd://h/,export=x", "not both")]
    [InlineData("path=/s,host=h", "cannot be combined with host/port")]
    [InlineData("host=h,port=0", "port")]
    [InlineData("export=x", "say where the server is")]
    [InlineData("server=x", "is an object")]
    [InlineData("host=h,tls=off,tls-ca=/c", "contradicts")]
    [InlineData("url=nbds://h/?tls-ca=/c,tls-hostname=n", "not both")]
    [InlineData("host=h,tls-ca=", "is empty")]
    public void Bad_options_name_what_is_wrong(string spec, string message)
    {
        var e = Assert.Throws<OptionException>(() => Of(spec.Split(',')));
        Assert.Contains(message, e.Message);
    }
}
