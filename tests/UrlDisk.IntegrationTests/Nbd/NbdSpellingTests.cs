using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary>
/// qemu's spellings of the nbd driver (QAPI BlockdevOptionsNbd's server/export and block/nbd.c's legacy host, port,
/// path) as json: and --image-opts specs, checked against qemu-img given the same spelling; and their refusals.
/// </summary>
public class NbdSpellingTests
{
    private const int MiB = 1 << 20;

    public static TheoryData<string> Spellings() =>
    [
        """json:{"driver":"nbd","server":{"type":"inet","host":"127.0.0.1","port":"PORT"},"export":"x"}""",
        """json:{"driver":"nbd","server":{"type":"inet","host":"127.0.0.1","port":PORT},"export":"x"}""",
        """json:{"driver":"nbd","server":{"type":"unix","path":"SOCKET"},"export":"x"}""",
        """json:{"driver":"nbd","host":"127.0.0.1","port":"PORT","export":"x"}""",
        """json:{"driver":"nbd","path":"SOCKET","export":"x"}""",
        """json:{"driver":"raw","file":{"driver":"nbd","server":{"type":"unix","path":"SOCKET"},"export":"x"}}""",
        """json:{"file":{"driver":"nbd","host":"127.0.0.1","port":"PORT","export":"x"}}""",
        "--image-opts driver=nbd,server.type=unix,server.path=SOCKET,export=x",
        "--image-opts driver=raw,file.driver=nbd,file.server.type=inet,file.server.host=127.0.0.1,file.server.port=PORT,file.export=x",
        "--image-opts driver=nbd,host=127.0.0.1,port=PORT,export=x",
    ];

    [Theory]
    [MemberData(nameof(Spellings))]
    public async Task A_qemu_spelling_opens_the_export_qemu_img_opens(string spelling)
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.raw");
        var bytes = NbdTool.CreateSparseFile(image, 2 * MiB + 4096, (0, 8192), (MiB, 65536));
        int port = FreePort.Get();
        string socket = dir.File("q");
        using var tcp = await NbdTlsSourceTests.Daemon.QemuNbdAsync(dir.File("pid"), "-r", "-f", "raw", "-b", "127.0.0.1", "-p", port.ToString(), "-x", "x", image);
        using var unix = await NbdTlsSourceTests.Daemon.QemuNbdAsync(dir.File("upid"), "-r", "-f", "raw", "-k", socket, "-x", "x", image);
        string[] spec = spelling.Replace("PORT", port.ToString()).Replace("SOCKET", socket).Split(' ');

        var qemu = JsonNode.Parse((await NbdTool.RunAsync("qemu-img", ["info", "--output=json", .. spec])).EnsureSuccess().Stdout)!;
        var ours = await UrlDiskCli.RunAsync(["info", "--output=json", .. spec]);
        Assert.True(ours.ExitCode == 0, ours.ToString());
        var json = JsonNode.Parse(ours.Stdout)!;
        Assert.Equal((long)qemu["virtual-size"]!, (long)json["virtual-size"]!);
        Assert.Equal((string?)qemu["format"], (string?)json["format"]);

        string copy = dir.File("copy.raw");
        var convert = await UrlDiskCli.RunAsync(["convert", "-O", "raw", .. spec, copy]);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal(bytes, File.ReadAllBytes(copy));
    }

    [Theory]
    [InlineData("""json:{"driver":"nbd","host":"127.0.0.1","bogus":"1"}""", "unknown option 'bogus'")]
    [InlineData("""json:{"driver":"nbd","server":{"type":"inet","host":"127.0.0.1","numeric":true}}""", "unknown option 'server.numeric'")]
    [InlineData("""json:{"driver":"nbd","server":{"type":"vsock","cid":"3","port":"1"}}""", "unknown option 'server.cid'")]
    [InlineData("""json:{"driver":"nbd","server":{"type":"inet","host":"127.0.0.1"},"host":"127.0.0.1"}""", "cannot be combined with server.*")]
    [InlineData("""json:{"driver":"nbd","host":"127.0.0.1","tls-creds":"tls0"}""", "tls-certificates=DIR")]
    [InlineData("""json:{"driver":"nbd","export":"x"}""", "say where the server is")]
    [InlineData("""json:{"driver":"nbd","url":"nbd://127.0.0.1/x","export":"x"}""", "not both")]
    public async Task A_spelling_urldisk_does_not_take_is_one_clear_error(string spec, string message)
    {
        var r = await UrlDiskCli.RunAsync("info", spec);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(message, r.Stderr);
    }
}
