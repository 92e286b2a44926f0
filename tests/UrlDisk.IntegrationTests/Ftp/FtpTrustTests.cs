using System.Security.Cryptography;
using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Ftp;

/// <summary>
/// An FTP server is not trusted to end a command or to keep secrets: endless preliminary replies time out, and
/// replies that repeat the user name or password are never quoted with them.
/// </summary>
public sealed class FtpTrustTests
{
    private const string User = "alice-ftp-user";
    private const string Password = "pw-s3cret-9f2c";
    private static readonly byte[] s_file = RandomNumberGenerator.GetBytes(200_000);

    // A timeout short enough to end the test in seconds, long enough for a loaded machine to log in within it.
    private static string Spec(int port, string userInfo = "", string timeout = "2") =>
        $"json:{{\"file.driver\":\"ftp\",\"file.url\":\"ftp://{userInfo}127.0.0.1:{port}/f.img\",\"file.timeout\":\"{timeout}\",\"file.retries\":\"0\",\"file.readahead\":\"0\"}}";

    [Fact]
    public async Task Endless_preliminary_replies_to_a_command_time_out()
    {
        await using var server = new FaultyFtpServer(s_file, failingRetrs: 0, endlessPreliminaryAfter: "TYPE");
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var e = await Assert.ThrowsAsync<SourceException>(async () => await ImageOpener.OpenAsync(Spec(server.Port), "raw", null, guard.Token));
        Assert.Contains("no progress for 2 s", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Endless_preliminary_replies_after_a_transfer_time_out()
    {
        await using var server = new FaultyFtpServer(s_file, failingRetrs: 0, endlessPreliminaryAfter: "RETR");
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var dev = await ImageOpener.OpenAsync(Spec(server.Port), "raw", null, guard.Token);
        var e = await Assert.ThrowsAsync<SourceException>(async () => await dev.ReadAsync(0, new byte[1000], guard.Token));
        Assert.Contains("no progress for 2 s", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(FtpEcho.InRefusedLogin, "530")]
    [InlineData(FtpEcho.InLaterReply, "550")]
    [InlineData(FtpEcho.InMalformedReply, "malformed")]
    public async Task Replies_that_echo_the_credentials_are_quoted_without_them(FtpEcho echo, string named)
    {
        await using var server = new FaultyFtpServer(s_file, failingRetrs: 0, echo: echo);
        var e = await Assert.ThrowsAsync<SourceException>(async () =>
            await ImageOpener.OpenAsync(Spec(server.Port, $"{User}:{Password}@", timeout: "30"), "raw"));
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(User, e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task The_cli_never_prints_credentials_a_server_echoes()
    {
        await using var server = new FaultyFtpServer(s_file, failingRetrs: 0, echo: FtpEcho.InRefusedLogin);
        using var temp = new TempDir("urldisk-ftp-echo");
        string passwordFile = temp.File("pw");
        await File.WriteAllTextAsync(passwordFile, Password + "\n");
        var r = await UrlDiskCli.RunAsync("info",
            $"json:{{\"file.driver\":\"ftp\",\"file.url\":\"ftp://127.0.0.1:{server.Port}/f.img\",\"file.username\":\"{User}\",\"file.password-file\":\"{passwordFile}\",\"file.retries\":\"0\"}}");
        CliAssert.Fails(r, "login failed", "530");
        CliAssert.NeverShows(r, Password);
        CliAssert.NeverShows(r, User);
    }
}
