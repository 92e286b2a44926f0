using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>Basic auth from the URL or from username + password-file; the password never appears in any output.</summary>
public sealed class HttpAuthTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    private NginxServer Nginx => fixture.Server;

    private (byte[] Data, string Path) PutProtected(string name)
    {
        var data = ImageFactory.Random((1 << 20) + 512, seed: 40 + name.Length);
        return (data, Nginx.Put($"auth/{name}.img", data));
    }

    [Theory]
    [InlineData("http")]
    [InlineData("https")]
    public async Task Credentials_in_the_url_work_and_are_not_printed(string scheme)
    {
        var (data, path) = PutProtected($"in-url-{scheme}");
        string spec = scheme == "http"
            ? Nginx.HttpUrlWithCredentials(path)
            : HttpSpecs.JsonDotted("https", Nginx.HttpsUrlWithCredentials(path), ("sslverify", "off"));
        using var tmp = new TempDir();
        string output = tmp.File("out.raw");
        var r = await UrlDiskCli.RunAsync("convert", "-O", "raw", spec, output);
        Assert.True(r.ExitCode == 0, r.ToString());
        ImageFactory.AssertSameBytes(data, await File.ReadAllBytesAsync(output), "convert with credentials in the URL");

        var info = await UrlDiskCli.RunAsync("info", "--output", "json", spec);
        Assert.True(info.ExitCode == 0, info.ToString());
        CliAssert.NeverShows(info, NginxServer.AuthPassword);
        CliAssert.NeverShows(info, NginxServer.AuthUser + ":");

        var log = await Nginx.SettledRequestsAsync(path);
        Assert.Contains(log, e => e.Status is 200 or 206 && e.User == NginxServer.AuthUser);
    }

    [Fact]
    public async Task Username_and_password_file_work_through_the_library()
    {
        var (data, path) = PutProtected("password-file");
        using var tmp = new TempDir();
        string pwFile = tmp.File("pw");
        await File.WriteAllTextAsync(pwFile, NginxServer.AuthPassword);
        string spec = HttpSpecs.JsonDotted("http", Nginx.HttpUrl(path), ("username", NginxServer.AuthUser), ("password-file", pwFile));
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using var device = await DeviceReads.OpenAsync(spec, cts.Token);
        await DeviceReads.AssertRandomReadsAsync(device, data, count: 20, seed: 41, cts.Token);
    }

    [Fact]
    public async Task Username_and_password_file_work_with_image_opts()
    {
        var (data, path) = PutProtected("password-file-opts");
        using var tmp = new TempDir();
        string pwFile = tmp.File("pw");
        await File.WriteAllTextAsync(pwFile, NginxServer.AuthPassword);
        string output = tmp.File("out.raw");
        var r = await UrlDiskCli.RunAsync("convert", "--image-opts", "-O", "raw",
            HttpSpecs.ImageOpts("http", Nginx.HttpUrl(path), ("username", NginxServer.AuthUser), ("password-file", pwFile)), output);
        Assert.True(r.ExitCode == 0, r.ToString());
        ImageFactory.AssertSameBytes(data, await File.ReadAllBytesAsync(output), "convert with password-file");
    }

    [Fact]
    public async Task Wrong_password_names_401_and_never_shows_the_password()
    {
        var (_, path) = PutProtected("wrong-password");
        const string wrong = "Wr0ng-Secret-Xyz";
        var r = await UrlDiskCli.RunAsync("info", Nginx.HttpUrlWithCredentials(path, password: wrong));
        CliAssert.Fails(r, "401");
        CliAssert.NeverShows(r, wrong);

        using var tmp = new TempDir();
        string pwFile = tmp.File("pw");
        await File.WriteAllTextAsync(pwFile, wrong);
        var r2 = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("http", Nginx.HttpUrl(path), ("username", NginxServer.AuthUser), ("password-file", pwFile)));
        CliAssert.Fails(r2, "401");
        CliAssert.NeverShows(r2, wrong);
    }

    [Fact]
    public async Task No_credentials_for_a_protected_file_names_401()
    {
        var (_, path) = PutProtected("no-credentials");
        var r = await UrlDiskCli.RunAsync("info", Nginx.HttpUrl(path));
        CliAssert.Fails(r, "401");
    }

    [Fact]
    public async Task Missing_password_file_is_a_clear_error_naming_the_option()
    {
        var (_, path) = PutProtected("missing-password-file");
        var r = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("http", Nginx.HttpUrl(path), ("username", NginxServer.AuthUser), ("password-file", "/nonexistent/urldisk/pw")));
        CliAssert.Fails(r, "password-file");
    }

    [Fact]
    public async Task Cookie_option_is_sent_and_never_printed()
    {
        var data = ImageFactory.Random(700_000, seed: 47);
        string path = Nginx.Put("cookie/session.img", data);
        string spec = HttpSpecs.JsonDotted("http", Nginx.HttpUrl(path), ("cookie", $"other=1; {NginxServer.CookieName}={NginxServer.CookieValue}"));
        using var tmp = new TempDir();
        string output = tmp.File("out.raw");
        var r = await UrlDiskCli.RunAsync("convert", "-O", "raw", spec, output);
        Assert.True(r.ExitCode == 0, r.ToString());
        ImageFactory.AssertSameBytes(data, await File.ReadAllBytesAsync(output), "convert with a session cookie");

        var info = await UrlDiskCli.RunAsync("info", "--output", "json", spec);
        Assert.True(info.ExitCode == 0, info.ToString());
        CliAssert.NeverShows(info, NginxServer.CookieValue);
    }

    [Fact]
    public async Task Missing_cookie_names_403()
    {
        string path = Nginx.Put("cookie/no-session.img", ImageFactory.Random(4096, seed: 48));
        var r = await UrlDiskCli.RunAsync("info", Nginx.HttpUrl(path));
        CliAssert.Fails(r, "403");
    }
}
