using System.Security.Cryptography;
using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.Sources.Tftp;
using UrlDisk.Specs;

namespace UrlDisk.IntegrationTests.Tftp;

/// <summary>
/// What a TFTP server says is checked against what it does: a tsize that does not match the data, junk datagrams
/// in place of answers. Each case ends in seconds (short timeouts); a hang is bounded by a cancellation guard.
/// </summary>
public sealed class TftpTrustTests
{
    private static readonly byte[] s_file = RandomNumberGenerator.GetBytes(5000);

    [Theory]
    [InlineData("2048", "2048")]                               // smaller, on a block boundary: the data stops at a whole block
    [InlineData("3000", "3000")]                               // smaller, inside a block
    [InlineData("6000", "6000")]                               // larger: the transfer ends before it
    [InlineData("4611686018427387904", "4611686018427387904")] // 2^62: no local file can hold it
    [InlineData("99999999999999999999", "99999999999999999999")] // not a 64-bit number
    public async Task A_tsize_that_is_not_the_files_size_fails_the_convert_naming_both_sizes_and_leaves_nothing(string tsize, string named)
    {
        await using var server = new FakeTftpServer(s_file, announcedTsize: tsize);
        using var temp = new TempDir("urldisk-tftp-tsize");
        string tmp = temp.Subdirectory("tmp");
        string target = temp.File("out/copy.raw");
        var r = await UrldiskWithTempDir(tmp, "convert", "-O", "raw",
            $"json:{{\"file.driver\":\"tftp\",\"file.url\":\"tftp://127.0.0.1:{server.Port}/x.img\",\"file.blksize\":\"512\"}}",
            target);

        string err = CliAssert.Fails(r, named, "tsize");
        Assert.Equal(1, r.ExitCode);
        Assert.Single(err.Split('\n'));
        if (long.TryParse(tsize, out long announced) && announced < 1L << 40)
        {
            // Both sizes: what was announced and what the data showed.
            Assert.True(err.Contains(s_file.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
                        || err.Contains("at least", StringComparison.Ordinal), err);
        }

        Assert.False(File.Exists(target), "a truncated copy was left behind");
        Assert.Empty(Directory.GetFileSystemEntries(Path.GetDirectoryName(target)!));
        Assert.Empty(Directory.GetFileSystemEntries(tmp));
    }

    [Fact]
    public async Task A_tsize_smaller_than_the_file_fails_reads_of_the_last_bytes_in_the_library_too()
    {
        await using var server = new FakeTftpServer(s_file, announcedTsize: "2048");
        string dir = Directory.CreateTempSubdirectory("urldisk-fillcache-").FullName;
        try
        {
            var context = new Opening.OpenContext { CacheDirectory = dir };
            var spec = SpecParser.ParseFilename($"json:{{\"file.driver\":\"tftp\",\"file.url\":\"tftp://127.0.0.1:{server.Port}/x.img\",\"file.blksize\":\"512\"}}");
            await using (var dev = await Opening.ImageOpener.OpenAsync(spec, "raw", context))
            {
                Assert.Equal(2048, dev.Length);
                var e = await Assert.ThrowsAsync<RemoteFileChangedException>(async () => await dev.ReadAsync(0, new byte[2048]));
                Assert.Contains("2048", e.Message, StringComparison.Ordinal);
            }

            Assert.Empty(Directory.GetFileSystemEntries(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Junk_before_the_first_answer_is_not_an_answer_and_does_not_trigger_a_resend()
    {
        await using var server = new FakeTftpServer(s_file, junk: TftpJunk.InsteadOfFirstAnswer);
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var e = await Assert.ThrowsAsync<SourceException>(async () => await OpenTftp(server.Port, guard.Token));
        Assert.Contains("no answer", e.Message, StringComparison.Ordinal);

        // One RRQ per silent wait: the first and `retries` more, however much junk came back. The server may
        // still be reading the last one from its socket.
        for (int i = 0; i < 100 && server.Requests.Count < 3; i++)
        {
            await Task.Delay(100);
        }

        Assert.Equal(3, server.Requests.Count);
    }

    [Fact]
    public async Task Junk_in_place_of_data_does_not_keep_a_transfer_alive()
    {
        await using var server = new FakeTftpServer(s_file, junk: TftpJunk.InsteadOfData);
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var settings = TftpSettings.FromNode(new OptionTree(new Dictionary<string, string>
        {
            ["url"] = $"tftp://127.0.0.1:{server.Port}/x.img",
            ["timeout"] = "0.2",
            ["retries"] = "2",
        }));
        await using var source = await TftpSource.OpenAsync(settings, guard.Token);
        var e = await Assert.ThrowsAsync<SourceException>(async () => await source.CopyToAsync((_, _) => ValueTask.CompletedTask, guard.Token));
        Assert.Contains("no data from the server", e.Message, StringComparison.Ordinal);
        Assert.Single(server.Requests);
    }

    private static async Task OpenTftp(int port, CancellationToken cancellationToken)
    {
        var spec = SpecParser.ParseFilename($"json:{{\"file.driver\":\"tftp\",\"file.url\":\"tftp://127.0.0.1:{port}/x.img\",\"file.timeout\":\"0.2\",\"file.retries\":\"2\"}}");
        await using var dev = await Opening.ImageOpener.OpenAsync(spec, "raw", null, cancellationToken);
    }

    /// <summary>The CLI with its temp directory (where the fill cache lives) pointed at <paramref name="tmp"/>.</summary>
    private static Task<ProcessResult> UrldiskWithTempDir(string tmp, params string[] args)
        => UrlDiskCli.RunAsync(args, TimeSpan.FromSeconds(60), new Dictionary<string, string?>
        {
            ["TMPDIR"] = tmp,

            // The runtime's diagnostics socket would otherwise live in TMPDIR too.
            ["DOTNET_EnableDiagnostics"] = "0",
        });
}
