using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary><c>urldisk serve</c> of images behind nginx: always read-only, never showing credentials.</summary>
public class ServeHttpTests
{
    private const int MiB = 1 << 20;

    [Fact]
    public async Task Http_image_with_credentials_is_served_read_only_and_the_password_never_shows()
    {
        await using var nginx = await NginxServer.StartAsync();
        var content = ImageFactory.WithZeroRegions(8 * MiB, seed: 7);
        string path = nginx.Put("auth/disk.raw", content);
        using var dir = new NbdTempDir();
        string url = nginx.HttpUrlWithCredentials(path);

        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--shared", "4", "--persistent", url);
        Assert.Contains("(read-only,", serve.Stderr);
        Assert.Contains($"127.0.0.1:{nginx.HttpPort}{path}", serve.Stderr);

        var export = JsonNode.Parse((await NbdTool.RunAsync("nbdinfo", ["--json", serve.Uri])).EnsureSuccess().Stdout)!["exports"]![0]!;
        Assert.True((bool)export["is_read_only"]!);
        Assert.Equal(8L * MiB, (long)export["export-size"]!);

        string copy = dir.File("copy.raw");
        (await NbdTool.RunAsync("nbdcopy", ["-C", "4", serve.Uri, copy])).EnsureSuccess();
        ImageFactory.AssertSameBytes(content, File.ReadAllBytes(copy), "nbdcopy of the served URL");
        Assert.Equal(0, await serve.StopAsync());
        Assert.DoesNotContain(NginxServer.AuthPassword, serve.Stderr);
        Assert.DoesNotContain(Uri.EscapeDataString(NginxServer.AuthPassword), serve.Stderr);
    }
}
