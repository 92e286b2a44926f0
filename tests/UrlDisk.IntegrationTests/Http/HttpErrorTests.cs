using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>Bad options and server refusals give one clear line naming the problem, and exit non-zero.</summary>
public sealed class HttpErrorTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    private NginxServer Nginx => fixture.Server;

    private string PutSmall(string name) => Nginx.Put($"errors/{name}.img", ImageFactory.Random(64 * 1024, seed: name.Length));

    [Fact]
    public async Task Missing_file_names_404()
    {
        var r = await UrlDiskCli.RunAsync("info", Nginx.HttpUrl("/errors/no-such-file.img"));
        CliAssert.Fails(r, "404");
    }

    [Fact]
    public async Task Missing_file_through_the_library_is_a_source_exception_naming_404()
    {
        var e = await Assert.ThrowsAnyAsync<SourceException>(async () =>
        {
            await using var d = await DeviceReads.OpenAsync(Nginx.HttpUrl("/errors/missing-lib.img"), CancellationToken.None);
        });
        Assert.Contains("404", e.Message, StringComparison.Ordinal);
        Assert.False(e.IsTransient);
    }

    [Fact]
    public async Task Unknown_option_lists_the_known_ones()
    {
        string path = PutSmall("unknown-option");
        var r = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("http", Nginx.HttpUrl(path), ("readahaed", "64k")));
        string err = CliAssert.Fails(r, "readahaed");
        foreach (var known in new[] { "url", "readahead", "sslverify", "timeout", "cookie", "username", "password-file", "connections", "retries" })
        {
            Assert.Contains(known, err, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("1000")]
    [InlineData("64k1")]
    [InlineData("-512")]
    public async Task Readahead_that_is_not_a_multiple_of_512_is_rejected(string value)
    {
        string path = PutSmall("bad-readahead");
        var r = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("http", Nginx.HttpUrl(path), ("readahead", value)));
        CliAssert.Fails(r, "readahead");
    }

    [Fact]
    public async Task Readahead_error_says_it_must_be_a_multiple_of_512()
    {
        string path = PutSmall("bad-readahead-512");
        var r = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("http", Nginx.HttpUrl(path), ("readahead", "1000")));
        CliAssert.Fails(r, "readahead", "512");
    }

    [Theory]
    [InlineData("connections", "0")]
    [InlineData("timeout", "-1")]
    [InlineData("timeout", "100000")]
    [InlineData("sslverify", "maybe")]
    [InlineData("retries", "x")]
    public async Task Invalid_option_values_name_the_option(string option, string value)
    {
        string path = PutSmall("bad-value");
        var r = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("http", Nginx.HttpUrl(path), (option, value)));
        CliAssert.Fails(r, option);
    }

    [Fact]
    public async Task Https_driver_with_an_http_url_is_refused_like_qemu()
    {
        string path = PutSmall("scheme-mismatch");
        var r = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("https", Nginx.HttpUrl(path)));
        CliAssert.Fails(r, "cannot handle the URL", "https://");
    }

    [Fact]
    public async Task Http_driver_with_an_ftp_url_is_refused()
    {
        var r = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("http", "ftp://127.0.0.1:1/x.img"));
        CliAssert.Fails(r, "cannot handle the URL", "http://");
    }

    [Fact]
    public async Task Url_option_is_required()
    {
        var r = await UrlDiskCli.RunAsync("info", """json:{"file.driver":"http","file.readahead":"64k"}""");
        CliAssert.Fails(r, "url");
    }

    [Fact]
    public async Task Nothing_listening_is_a_clear_connection_error()
    {
        int port = FreePort.Get();
        var r = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("http", $"http://127.0.0.1:{port}/x.img", ("retries", 0)));
        CliAssert.Fails(r, $"127.0.0.1:{port}");
    }

    [Fact]
    public async Task Convert_of_a_missing_url_writes_no_output_file()
    {
        using var tmp = new TempDir();
        string output = tmp.File("never.raw");
        var r = await UrlDiskCli.RunAsync("convert", "-O", "raw", Nginx.HttpUrl("/errors/absent.img"), output);
        CliAssert.Fails(r, "404");
        Assert.False(File.Exists(output), "a failed convert must not leave a half-made target");
    }
}
