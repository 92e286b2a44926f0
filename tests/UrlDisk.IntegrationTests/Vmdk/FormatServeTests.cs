using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Nbd;

namespace UrlDisk.IntegrationTests.Vmdk;

/// <summary><c>urldisk serve</c> of vmdk and vdi images: the bytes and the allocation qemu sees in the file.</summary>
public class FormatServeTests
{
    [Theory]
    [InlineData("vmdk", "subformat=streamOptimized")]
    [InlineData("vmdk", "subformat=monolithicSparse")]
    [InlineData("vdi", "static=off")]
    public async Task Served_over_nbd_reads_and_maps_like_qemu_reads_the_file(string format, string options)
    {
        using var dir = new NbdTempDir();
        string raw = dir.File("base.raw");
        (await NbdTool.RunAsync("qemu-img", ["create", "-q", "-f", "raw", raw, "8M"])).EnsureSuccess();
        (await NbdTool.RunAsync("qemu-io", ["-f", "raw", "-c", "write -P 0x11 0 1M", "-c", "write -P 0x22 5M 64k", raw])).EnsureSuccess();
        string image = dir.File("disk." + format);
        (await NbdTool.RunAsync("qemu-img", ["convert", "-f", "raw", "-O", format, "-o", options, raw, image])).EnsureSuccess();
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--read-only", "--shared", "0", "--persistent", image);

        (await NbdTool.RunAsync("qemu-img", ["compare", "-f", "raw", "-F", format, serve.Uri, image])).EnsureSuccess();

        var qemuMap = JsonNode.Parse((await NbdTool.RunAsync("qemu-img", ["map", "--output=json", "-f", format, image])).EnsureSuccess().Stdout)!.AsArray();
        var expected = Merge(qemuMap.Select(e => ((long)e!["start"]!, (long)e["length"]!, (bool)e["data"]! ? "data" : "zero")));
        var nbdMap = JsonNode.Parse((await NbdTool.RunAsync("nbdinfo", ["--map", "--json", serve.Uri])).EnsureSuccess().Stdout)!.AsArray();
        var got = Merge(nbdMap.Select(e => ((long)e!["offset"]!, (long)e["length"]!, ((int)e["type"]! & 2) != 0 ? "zero" : "data")));
        Assert.Equal(expected, got);
        Assert.Equal(0, await serve.StopAsync());
    }

    private static List<(long Start, long Length, string Kind)> Merge(IEnumerable<(long Start, long Length, string Kind)> runs)
    {
        var merged = new List<(long Start, long Length, string Kind)>();
        foreach (var r in runs)
        {
            if (merged.Count > 0 && merged[^1].Kind == r.Kind && merged[^1].Start + merged[^1].Length == r.Start)
            {
                merged[^1] = (merged[^1].Start, merged[^1].Length + r.Length, r.Kind);
            }
            else
            {
                merged.Add(r);
            }
        }

        return merged;
    }
}
