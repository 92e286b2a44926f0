using System.Text.Json.Nodes;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary><c>urldisk serve</c> of qcow2 images made by qemu-img, checked against qemu's own view of the same files.</summary>
public class ServeQcow2Tests
{
    private const int MiB = 1 << 20;

    [Fact]
    public async Task Qcow2_served_over_nbd_reads_and_maps_like_qemu_reads_the_file()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("disk.qcow2");
        (await NbdTool.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "cluster_size=65536", image, "32M"])).EnsureSuccess();
        (await NbdTool.RunAsync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x11 1M 192k", "-c", "write -P 0x22 9M 64k", "-c", "write -z 20M 1M", "-c", "write -P 0x33 31M 1M", image])).EnsureSuccess();
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--read-only", "--shared", "0", "--persistent", image);

        var info = JsonNode.Parse((await NbdTool.RunAsync("nbdinfo", ["--json", serve.Uri])).EnsureSuccess().Stdout)!["exports"]![0]!;
        Assert.Equal(32L * MiB, (long)info["export-size"]!);

        (await NbdTool.RunAsync("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", serve.Uri, image])).EnsureSuccess();

        // What qemu says about the file: data where written, zero elsewhere.
        var qemuMap = JsonNode.Parse((await NbdTool.RunAsync("qemu-img", ["map", "--output=json", "-f", "qcow2", image])).EnsureSuccess().Stdout)!.AsArray();
        var expected = Merge(qemuMap.Select(e => ((long)e!["start"]!, (long)e["length"]!, (bool)e["data"]! ? "data" : "zero")));

        // What NBD block status says through urldisk serve (hole|zero = 3 reads as zero).
        var nbdMap = JsonNode.Parse((await NbdTool.RunAsync("nbdinfo", ["--map", "--json", serve.Uri])).EnsureSuccess().Stdout)!.AsArray();
        var got = Merge(nbdMap.Select(e => ((long)e!["offset"]!, (long)e["length"]!, ((int)e["type"]! & 2) != 0 ? "zero" : "data")));
        Assert.Equal(expected, got);

        string copy = dir.File("copy.raw");
        (await NbdTool.RunAsync("nbdcopy", ["-C", "4", serve.Uri, copy])).EnsureSuccess();
        (await NbdTool.RunAsync("qemu-img", ["compare", "-f", "raw", "-F", "qcow2", copy, image])).EnsureSuccess();
        Assert.Equal(0, await serve.StopAsync());
    }

    [Fact]
    public async Task Writes_through_nbd_land_in_the_qcow2_and_qemu_img_check_is_clean()
    {
        using var dir = new NbdTempDir();
        string image = dir.File("rw.qcow2");
        (await NbdTool.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", image, "16M"])).EnsureSuccess();
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--persistent", image);
        Assert.Contains("(read-write,", serve.Stderr);

        (await NbdTool.RunAsync("qemu-io", ["-f", "raw", "-c", "write -P 0x5a 65536 200k", "-c", "write -z 4M 64k", "-c", "flush", serve.Uri])).EnsureSuccess();
        Assert.Equal(0, await serve.StopAsync());

        (await NbdTool.RunAsync("qemu-img", ["check", image])).EnsureSuccess();
        var read = (await NbdTool.RunAsync("qemu-io", ["-f", "qcow2", "-r", "-c", "read -P 0x5a 65536 200k", "-c", "read -P 0 0 65536", "-c", "read -P 0 4M 64k", image])).EnsureSuccess();
        Assert.DoesNotContain("Pattern verification failed", read.Stdout);
    }

    [Fact]
    public async Task Copy_on_read_fills_the_overlay_from_its_backing_file()
    {
        using var dir = new NbdTempDir();
        string baseImage = dir.File("base.raw");
        NbdTool.CreateSparseFile(baseImage, 8 * MiB, (MiB, 2 * MiB), (6 * MiB, 65536));
        string overlay = dir.File("overlay.qcow2");
        (await NbdTool.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", baseImage, overlay])).EnsureSuccess();

        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--copy-on-read", "--persistent", overlay);
        string copy = dir.File("copy.raw");
        (await NbdTool.RunAsync("nbdcopy", [serve.Uri, copy])).EnsureSuccess();
        Assert.Equal(File.ReadAllBytes(baseImage), File.ReadAllBytes(copy));
        Assert.Equal(0, await serve.StopAsync());

        // The data read through the server now lives in the overlay itself (depth 0), and the image is consistent.
        (await NbdTool.RunAsync("qemu-img", ["check", overlay])).EnsureSuccess();
        var map = JsonNode.Parse((await NbdTool.RunAsync("qemu-img", ["map", "--output=json", overlay])).EnsureSuccess().Stdout)!.AsArray();
        foreach (var e in map.Where(e => (bool)e!["data"]!))
        {
            Assert.Equal(0, (int)e!["depth"]!);
        }

        var allocated = Merge(map.Where(e => (bool)e!["data"]!).Select(e => ((long)e!["start"]!, (long)e["length"]!, "data")));
        Assert.Contains(allocated, r => r.Start <= MiB && r.Start + r.Length >= 3 * MiB);
        Assert.Contains(allocated, r => r.Start <= 6 * MiB && r.Start + r.Length >= (6 * MiB) + 65536);
        (await NbdTool.RunAsync("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", overlay, baseImage])).EnsureSuccess();

        // Read without its backing file, the overlay alone holds the base's data.
        string alone = dir.File("alone.raw");
        string noBacking = $$$"""json:{"driver":"qcow2","backing":null,"file":{"driver":"file","filename":"{{{overlay}}}"}}""";
        (await NbdTool.RunAsync("qemu-img", ["convert", "-O", "raw", noBacking, alone])).EnsureSuccess();
        Assert.Equal(File.ReadAllBytes(baseImage), File.ReadAllBytes(alone));
    }

    /// <summary>Joins neighbouring runs of the same kind, so maps with different granularity compare equal.</summary>
    private static List<(long Start, long Length, string Kind)> Merge(IEnumerable<(long Start, long Length, string Kind)> runs)
    {
        var merged = new List<(long, long, string)>();
        foreach (var r in runs)
        {
            if (merged.Count > 0 && merged[^1].Item3 == r.Kind && merged[^1].Item1 + merged[^1].Item2 == r.Start)
            {
                merged[^1] = (merged[^1].Item1, merged[^1].Item2 + r.Length, r.Kind);
            }
            else
            {
                merged.Add(r);
            }
        }

        return merged;
    }
}
