using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>
/// Hostile input to every verb and driver: each must end with exit 1 and ONE line that names the thing, the value
/// and what is allowed, never a raw .NET message. <c>{dir}</c> is a fresh directory, <c>{img}</c> a 1 MiB raw image
/// in it. NUL characters cannot travel in argv, so they come through JSON escapes and %00.
/// </summary>
public sealed class BadInputTests
{
    private static readonly string[] s_rawDotnetPhrases =
    [
        "Specified argument", "Specified file length", "Value cannot be null", "The value cannot be", "Exception", "at UrlDisk.",
        "Parameter '", "Null character in path", "System.", "LineNumber", "BytePositionInLine", "Cannot parse argument",
    ];

    private static string Json(string fileNode) => "json:{" + fileNode + "}";

    /// <summary>Arguments, then words the message must contain (case-insensitive).</summary>
    public static TheoryData<string[], string[]> Cases => new()
    {
        // NUL characters in paths, URLs and option values.
        { ["info", Json("\"file.driver\":\"file\",\"file.filename\":\"{dir}/a\\u0000b\"")], ["file.filename", "NUL"] },
        { ["info", "file:///tmp/a%00b"], ["file:///tmp/a%00b", "NUL"] },
        { ["info", Json("\"file.driver\":\"ftp\",\"file.url\":\"ftp://127.0.0.1:1/a%00b\"")], ["ftp://127.0.0.1:1/a%00b", "NUL"] },
        { ["info", Json("\"file.driver\":\"http\",\"file.url\":\"http://127.0.0.1:1/x\",\"file.cookie\":\"a\\u0000b\"")], ["file.cookie", "NUL"] },
        { ["info", "--image-opts", "driver=raw,file.filename={img},offset=\u0001"], ["offset"] },

        // Empty strings.
        { ["info", Json("\"file.driver\":\"file\",\"file.filename\":\"\"")], ["file.filename", "empty"] },
        { ["info", Json("\"file.driver\":\"http\",\"file.url\":\"http://127.0.0.1:1/x\",\"file.password-file\":\"\"")], ["file.password-file", "empty"] },
        { ["info", Json("\"file.driver\":\"ftp\",\"file.url\":\"ftp://127.0.0.1:1/x\",\"file.password-file\":\"\"")], ["file.password-file", "empty"] },
        { ["info", Json("\"file.driver\":\"ftp\",\"file.url\":\"ftp://127.0.0.1:1/x\",\"file.cafile\":\"\"")], ["file.cafile", "empty"] },
        { ["create", "-f", "raw", "", "1M"], ["filename", "empty"] },
        { ["convert", "{img}", ""], ["target", "empty"] },
        { ["serve", "-k", "", "{img}"], ["--socket", "empty"] },
        { ["serve", "--pid-file", "", "-p", "0", "{img}"], ["--pid-file", "empty"] },

        // Sizes: huge, negative, not numbers.
        { ["create", "-f", "raw", "{dir}/big.raw", "9223372036854775807"], ["9223372036854775807", "file system"] },
        { ["create", "-f", "raw", "{dir}/big.raw", "7E"], ["8070450532247928832", "file system"] },
        { ["create", "-f", "raw", "{dir}/big.raw", "-18446744073709551616"], ["-18446744073709551616", "negative"] },
        { ["create", "-f", "raw", "{dir}/big.raw", "18446744073709551616"], ["18446744073709551616", "9223372036854775807"] },
        { ["create", "-f", "raw", "{dir}/big.raw", "8E"], ["8E", "9223372036854775807"] },
        { ["create", "-f", "raw", "{dir}/big.raw", "1e30"], ["1e30", "suffix"] },
        { ["create", "-f", "qcow2", "{dir}/big.qcow2", "-1"], ["-1", "negative"] },
        // 8E - 512 once overflowed the L1 size arithmetic and made an image info refuses to open.
        { ["create", "-f", "qcow2", "{dir}/big.qcow2", "9223372036854775296"], ["9223372036854775296", "2^62"] },
        { ["create", "-f", "qcow2", "{dir}/big.qcow2", "4E"], ["4611686018427387904", "2^62"] },
        { ["info", "--image-opts", "driver=raw,file.filename={img},offset=-1"], ["offset", "-1", "negative"] },
        { ["info", "--image-opts", "driver=raw,file.filename={img},size=9E"], ["size", "9E", "9223372036854775807"] },
        { ["info", "--image-opts", "driver=raw,file.filename={img},offset=9223372036854775807,size=10"], ["offset", "9223372036854775807", "1048576"] },
        { ["info", "--image-opts", "driver=raw,file.filename={img},size=1.5"], ["size", "1.5", "whole"] },
        { ["info", Json("\"file.driver\":\"http\",\"file.url\":\"http://127.0.0.1:1/x\",\"file.readahead\":\"99999999999999999999\"")], ["file.readahead", "99999999999999999999"] },
        { ["info", Json("\"file.driver\":\"http\",\"file.url\":\"http://127.0.0.1:1/x\",\"file.timeout\":\"1e-9\"")], ["file.timeout", "1e-9", "0.001"] },
        { ["info", Json("\"file.driver\":\"ftp\",\"file.url\":\"ftp://127.0.0.1:1/x\",\"file.timeout\":\"0.0000001\"")], ["file.timeout", "0.001"] },
        { ["info", Json("\"file.driver\":\"ftp\",\"file.url\":\"ftp://127.0.0.1:1/x\",\"file.connections\":\"99999999999\"")], ["file.connections", "99999999999", "1 to 64"] },
        { ["info", Json("\"file.driver\":\"tftp\",\"file.url\":\"tftp://127.0.0.1:1/x\",\"file.blksize\":\"-1\"")], ["file.blksize", "-1", "8 to 65464"] },
        { ["info", Json("\"file.driver\":\"tftp\",\"file.url\":\"tftp://127.0.0.1:1/x\",\"file.retries\":\"1e3\"")], ["file.retries", "1e3", "0 to 100"] },

        // CLI flags that take numbers.
        { ["convert", "-m", "99999999999", "{img}", "{dir}/o.raw"], ["-m", "99999999999", "1 to 64"] },
        { ["convert", "-m", "abc", "{img}", "{dir}/o.raw"], ["-m", "abc", "1 to 64"] },
        { ["convert", "-m", "", "{img}", "{dir}/o.raw"], ["-m", "1 to 64"] },
        { ["convert", "-S", "-1", "{img}", "{dir}/o.raw"], ["-S", "-1", "negative"] },
        { ["serve", "-p", "abc", "{img}"], ["--port", "abc", "0 to 65535"] },
        { ["serve", "-p", "99999999999", "{img}"], ["--port", "99999999999", "0 to 65535"] },
        { ["serve", "-e", "abc", "{img}"], ["--shared", "abc"] },
        { ["serve", "-e", "-1", "{img}"], ["--shared", "-1"] },
        { ["serve", "-b", "not an address", "-p", "0", "{img}"], ["--bind", "not an address"] },

        // A flag no verb knows is named, not the argument after it.
        { ["info", "--bogus", "{img}"], ["unknown option '--bogus'", "urldisk info --help"] },
        { ["convert", "{img}", "--no-such-flag", "{dir}/o.raw"], ["unknown option '--no-such-flag'"] },

        // Odd specs and URLs.
        { ["info", "json:"], ["JSON"] },
        { ["info", "json:{"], ["JSON"] },
        { ["info", "json:{\"file.driver\":\"http\",}"], ["JSON"] },
        { ["info", "http://"], ["http://"] },
        { ["info", "ftp://h:99999/x"], ["ftp://h:99999/x", "ftp://host"] },
        { ["info", "ftp://127.0.0.1:0/x"], ["port", "0", "1 to 65535"] },
        { ["info", "tftp://127.0.0.1:0/x"], ["port", "0", "1 to 65535"] },
        { ["info", "tftp://[::1"], ["tftp://[::1", "tftp://host"] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Bad_input_gets_one_clear_line_and_exit_1(string[] args, string[] mustContain)
    {
        using var temp = new TempDir("urldisk-bad-input");
        string img = temp.File("img.raw");
        await File.WriteAllBytesAsync(img, new byte[1 << 20]);
        var r = await UrlDiskCli.RunAsync(args.Select(a => a.Replace("{dir}", temp.Path, StringComparison.Ordinal).Replace("{img}", img, StringComparison.Ordinal)),
            TimeSpan.FromSeconds(60));

        string err = CliAssert.Fails(r, mustContain);
        Assert.Equal(1, r.ExitCode);
        Assert.Single(err.Split('\n'));
        Assert.StartsWith("urldisk: ", err, StringComparison.Ordinal);
        Assert.Empty(r.Stdout.Trim());
        foreach (string phrase in s_rawDotnetPhrases)
        {
            Assert.DoesNotContain(phrase, err, StringComparison.Ordinal);
        }

        // Nothing half-made: only the image the test put there is left.
        Assert.Equal([img], Directory.GetFileSystemEntries(temp.Path));
    }
}
