using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Http;

/// <summary><c>urldisk info</c> on http(s) URLs: qemu-img's keys plus what the source learned, without credentials.</summary>
public sealed class HttpInfoTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    private NginxServer Nginx => fixture.Server;

    [Fact]
    public async Task Json_output_has_size_format_filename_and_source()
    {
        var data = ImageFactory.Random(3 * 1024 * 1024, seed: 70);
        string path = Nginx.Put("info/plain.img", data);
        var r = await UrlDiskCli.RunAsync("info", "--output", "json", Nginx.HttpUrl(path));
        Assert.True(r.ExitCode == 0, r.ToString());
        var o = JsonNode.Parse(r.Stdout)!.AsObject();
        Assert.Equal(data.Length, o["virtual-size"]!.GetValue<long>());
        Assert.Equal("raw", o["format"]!.GetValue<string>());
        Assert.Equal(Nginx.HttpUrl(path), o["filename"]!.GetValue<string>());
        var source = Assert.IsType<JsonObject>(o["urldisk"]!["source"]);
        Assert.Equal(data.Length, source["size"]!.GetValue<long>());
    }

    [Fact]
    public async Task Json_output_filename_has_no_credentials()
    {
        var data = ImageFactory.Random(1024 * 1024, seed: 71);
        string path = Nginx.Put("auth/info-cred.img", data);
        var r = await UrlDiskCli.RunAsync("info", "--output", "json", Nginx.HttpUrlWithCredentials(path));
        Assert.True(r.ExitCode == 0, r.ToString());
        var o = JsonNode.Parse(r.Stdout)!.AsObject();
        Assert.Equal(Nginx.HttpUrl(path), o["filename"]!.GetValue<string>());
        CliAssert.NeverShows(r, NginxServer.AuthPassword);
        Assert.DoesNotContain(NginxServer.AuthUser + ":", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Human_output_shows_virtual_size_like_qemu_img()
    {
        var data = ImageFactory.Random(2 * 1024 * 1024, seed: 72);
        string path = Nginx.Put("info/human.img", data);
        var r = await UrlDiskCli.RunAsync("info", Nginx.HttpUrl(path));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains($"image: {Nginx.HttpUrl(path)}", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("file format: raw", r.Stdout, StringComparison.Ordinal);
        Assert.Contains($"virtual size: 2 MiB ({data.Length} bytes)", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Info_follows_redirects_and_reports_the_size_of_the_target()
    {
        var data = ImageFactory.Random(1536 * 1024, seed: 73);
        string path = Nginx.Put("info/redirected.img", data);
        var r = await UrlDiskCli.RunAsync("info", "--output", "json", Nginx.HttpUrl("/redirect" + path));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(data.Length, JsonNode.Parse(r.Stdout)!["virtual-size"]!.GetValue<long>());
    }
}
