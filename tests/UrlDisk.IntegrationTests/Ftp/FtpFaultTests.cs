using System.Security.Cryptography;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Ftp;

public sealed class FtpFaultTests
{
    private static readonly byte[] s_file = RandomNumberGenerator.GetBytes(200_000);

    [Fact]
    public async Task Data_connection_closed_mid_transfer_is_retried_and_the_read_is_whole()
    {
        await using var server = new FaultyFtpServer(s_file, failingRetrs: 2);
        await using var dev = await VsftpdTests.Open("ftp", $"ftp://127.0.0.1:{server.Port}/f.img", ("readahead", "0"));
        var buf = new byte[50_000];
        await dev.ReadAsync(70_000, buf);
        Assert.True(buf.AsSpan().SequenceEqual(s_file.AsSpan(70_000, 50_000)));
        Assert.Equal(3, server.Retrs);

        // The control connection survived the faults and serves the next read.
        await dev.ReadAsync(0, buf);
        Assert.True(buf.AsSpan().SequenceEqual(s_file.AsSpan(0, 50_000)));
    }

    [Fact]
    public async Task Retries_are_logged_with_their_cause_to_the_context_logger_factory()
    {
        await using var server = new FaultyFtpServer(s_file, failingRetrs: 1);
        var logs = new UrlDisk.IntegrationTests.Http.CollectingLoggerFactory();
        string spec = "json:" + System.Text.Json.JsonSerializer.Serialize(new { file = new Dictionary<string, string> { ["driver"] = "ftp", ["url"] = $"ftp://127.0.0.1:{server.Port}/f.img", ["readahead"] = "0" } });
        await using var dev = await ImageOpener.OpenAsync(spec, "raw", new OpenContext { LoggerFactory = logs });
        var buf = new byte[50_000];
        await dev.ReadAsync(70_000, buf);
        Assert.True(buf.AsSpan().SequenceEqual(s_file.AsSpan(70_000, 50_000)));
        Assert.Contains(logs.Lines, l => l.Category == "UrlDisk.Ftp" && l.Message.Contains("retry 1", StringComparison.Ordinal) && l.Message.Contains("426", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Data_connection_closed_mid_transfer_without_retries_names_the_426_reply()
    {
        await using var server = new FaultyFtpServer(s_file, failingRetrs: 100);
        await using var dev = await VsftpdTests.Open("ftp", $"ftp://127.0.0.1:{server.Port}/f.img", ("readahead", "0"), ("retries", "0"));
        var e = await Assert.ThrowsAsync<SourceException>(async () => await dev.ReadAsync(0, new byte[50_000]));
        Assert.Contains("426", e.Message, StringComparison.Ordinal);
        Assert.True(e.IsTransient);
    }

    [Fact]
    public async Task Without_epsv_pasv_is_used_and_one_control_connection_serves_every_read()
    {
        var file = RandomNumberGenerator.GetBytes(4 << 20);
        await using var server = new FaultyFtpServer(file, failingRetrs: 0, epsv: false);
        await using var dev = await VsftpdTests.Open("ftp", $"ftp://127.0.0.1:{server.Port}/f.img", ("readahead", "0"), ("connections", "1"));
        var rng = new Random(10);
        for (int i = 0; i < 20; i++)
        {
            var buf = new byte[rng.Next(1, 70_000)];
            long off = rng.NextInt64(0, file.Length - buf.Length);
            await dev.ReadAsync(off, buf);
            Assert.True(buf.AsSpan().SequenceEqual(file.AsSpan((int)off, buf.Length)));
        }

        Assert.Equal(1, server.Sessions);
        Assert.Equal(20, server.Retrs);
        Assert.Equal(20, server.PasvCommands);
    }

    [Fact]
    public async Task A_server_that_stops_sending_fails_the_read_after_the_timeout()
    {
        await using var server = new FaultyFtpServer(s_file, failingRetrs: 0, stall: true);
        await using var dev = await VsftpdTests.Open("ftp", $"ftp://127.0.0.1:{server.Port}/f.img", ("timeout", "0.5"), ("retries", "1"));
        var started = DateTime.UtcNow;
        var e = await Assert.ThrowsAsync<SourceException>(async () => await dev.ReadAsync(0, new byte[1000]));
        Assert.Contains("no progress for 0.5 s", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, server.Retrs);
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(10));
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, false)]
    public async Task A_server_without_rest_or_size_is_read_once_through_the_fill_cache(bool rest, bool size)
    {
        var file = RandomNumberGenerator.GetBytes(3 << 20);
        await using var server = new FaultyFtpServer(file, failingRetrs: 0, rest: rest, size: size);
        await using var dev = await VsftpdTests.Open("ftp", $"ftp://127.0.0.1:{server.Port}/f.img");
        var details = dev.Info.Child!.Info.Details;
        Assert.StartsWith("no (", (string)details["ranges"]!, StringComparison.Ordinal);
        Assert.True(details.ContainsKey("fill-cache"));
        await RandomReads.AssertMatchesAsync(dev, file, reads: 40, seed: 11);
        Assert.Equal(1, server.Retrs);
    }
}
