using UrlDisk.IntegrationTests.Ftp;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.DiskCache;

/// <summary>The disk cache over an FTP source (vsftpd, SIZE and MDTM): the second convert fetches no byte.</summary>
public sealed class DiskCacheFtpTests(Vsftpd server) : IClassFixture<Vsftpd>
{
    [Fact]
    public async Task A_second_ftp_convert_fetches_nothing_and_writes_the_same_bytes()
    {
        using var temp = new TempDir("urldisk-diskcache-ftp");
        string cache = Path.Combine(temp.Path, "cache");
        string url = $"ftp://127.0.0.1:{server.Port}/disk.img";

        var first = await UrlDiskCli.RunAsync("--stats", "convert", "-O", "raw", "--cache-dir", cache, url, temp.File("1.raw"));
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.DoesNotContain("bytes fetched 0,", first.Stderr, StringComparison.Ordinal);
        var second = await UrlDiskCli.RunAsync("--stats", "convert", "-O", "raw", "--cache-dir", cache, url, temp.File("2.raw"));
        Assert.True(second.ExitCode == 0, second.ToString());

        Assert.Contains("bytes fetched 0,", second.Stderr, StringComparison.Ordinal);
        Assert.True(server.Image.AsSpan().SequenceEqual(File.ReadAllBytes(temp.File("1.raw"))));
        Assert.True(server.Image.AsSpan().SequenceEqual(File.ReadAllBytes(temp.File("2.raw"))));
    }
}
