using System.Security.Cryptography;

namespace UrlDisk.IntegrationTests.Ftp;

/// <summary>FTP reads under the one retry policy: a broken transfer resumes where it stopped, and only attempts without progress count.</summary>
public sealed class FtpRetryTests
{
    [Fact]
    public async Task Transfers_that_each_break_after_some_bytes_still_finish_the_read()
    {
        // Every RETR sends 1000 bytes, then the data connection closes and the server answers 426.
        var file = RandomNumberGenerator.GetBytes(200_000);
        await using var server = new FaultyFtpServer(file, failingRetrs: int.MaxValue);
        await using var dev = await VsftpdTests.Open("ftp", $"ftp://127.0.0.1:{server.Port}/f.img", ("readahead", "0"), ("retries", "1"));
        var buf = new byte[12_000];
        await dev.ReadAsync(50_000, buf).AsTask().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(buf.AsSpan().SequenceEqual(file.AsSpan(50_000, 12_000)));

        // Each RETR resumed where the one before stopped: 12 of them, 1000 bytes each.
        Assert.Equal(12, server.Retrs);
    }
}
