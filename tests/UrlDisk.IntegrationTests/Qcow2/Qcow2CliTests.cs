using System.Text.Json;

namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary>The create/check/compare/map/info verbs against qemu-img's answers on the same images.</summary>
public class Qcow2CliTests
{
    private static (int Exit, string Output) Urldisk(QemuTools q, params string[] args)
        => q.RunWithExit(Infrastructure.UrlDiskCli.Launcher, args, [0, 1, 2, 3, 63]);

    [Fact]
    public void Create_with_backing_url_and_options_makes_an_image_qemu_accepts()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "base.qcow2", "8M");
        var (exit, _) = Urldisk(q, "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "-o", "cluster_size=4096,compression_type=zstd", "top.qcow2");
        Assert.Equal(0, exit);
        using var info = JsonDocument.Parse(q.Img("info", "--output=json", "top.qcow2"));
        var root = info.RootElement;
        Assert.Equal(8L << 20, root.GetProperty("virtual-size").GetInt64());
        Assert.Equal("base.qcow2", root.GetProperty("backing-filename").GetString());
        Assert.Equal("qcow2", root.GetProperty("backing-filename-format").GetString());
        Assert.Equal(4096, root.GetProperty("cluster-size").GetInt32());
        Assert.Equal("zstd", root.GetProperty("format-specific").GetProperty("data").GetProperty("compression-type").GetString());
        q.Img("check", "top.qcow2");

        // A URL backing name is stored as given (not opened when the size is given).
        Assert.Equal(0, Urldisk(q, "create", "-f", "qcow2", "-b", "http://127.0.0.1:9/dir/base.qcow2", "-F", "qcow2", "url.qcow2", "1G").Exit);
        Assert.Contains("http://127.0.0.1:9/dir/base.qcow2", q.Img("info", "url.qcow2"), StringComparison.Ordinal);

        // Bad options are refused with the option named, and nothing is written.
        var bad = Urldisk(q, "create", "-f", "qcow2", "-o", "cluster_size=3000", "bad.qcow2", "1M");
        Assert.Equal(1, bad.Exit);
        Assert.False(File.Exists(q.PathOf("bad.qcow2")));
    }

    [Fact]
    public void Check_reports_clean_leaks_and_corruptions_with_qemu_exit_codes_and_repairs()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "img.qcow2", "4M");
        q.Io("-c", "write -P 1 0 1M", "img.qcow2");
        Assert.Equal(0, Urldisk(q, "check", "img.qcow2").Exit);

        // Leak: refcount 2 for the refcount table (cluster 1), in the refcount block at cluster 2.
        PatchU16(q.PathOf("img.qcow2"), (2 * 65536) + (1 * 2), 2);
        Assert.Equal(3, q.RunWithExit("qemu-img", ["check", "img.qcow2"], [3]).Exit);
        var leak = Urldisk(q, "check", "--output", "json", "img.qcow2");
        Assert.Equal(3, leak.Exit);
        Assert.Equal(1, JsonDocument.Parse(leak.Output).RootElement.GetProperty("leaks").GetInt32());
        Assert.Equal(0, Urldisk(q, "check", "-r", "leaks", "img.qcow2").Exit);
        q.Img("check", "img.qcow2");

        // Corruption: drop the refcount of an L2 table to 0.
        PatchU16(q.PathOf("img.qcow2"), (2 * 65536) + (4 * 2), 0);
        Assert.Equal(2, q.RunWithExit("qemu-img", ["check", "img.qcow2"], [2]).Exit);
        var bad = q.RunAll(Infrastructure.UrlDiskCli.Launcher, "check", "img.qcow2");
        Assert.Equal(2, bad.Exit);
        Assert.Contains("ERROR cluster 4 refcount=0 reference=1", bad.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, Urldisk(q, "check", "-r", "all", "img.qcow2").Exit);
        q.Img("check", "img.qcow2");

        // Persistent bitmaps are counted: no false leaks (and so -r leaks would not free them).
        q.Img("create", "-f", "qcow2", "bm.qcow2", "16M");
        q.Img("bitmap", "--add", "bm.qcow2", "b0");
        q.Img("bitmap", "--add", "-g", "512", "bm.qcow2", "b1");
        q.Io("-c", "write -P 2 2M 1M", "bm.qcow2");
        Assert.Equal(0, Urldisk(q, "check", "bm.qcow2").Exit);

        // A raw image has no checks.
        q.Img("create", "-f", "raw", "r.raw", "1M");
        Assert.Equal(63, Urldisk(q, "check", "r.raw").Exit);
    }

    [Fact]
    public void Compare_agrees_with_qemu_img_compare()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "a.qcow2", "4M");
        q.Io("-c", "write -P 7 1M 64k", "a.qcow2");
        q.Img("convert", "-O", "raw", "a.qcow2", "a.raw");
        Assert.Equal(0, Urldisk(q, "compare", "a.qcow2", "a.raw").Exit);
        q.Io("-f", "raw", "-c", "write -P 8 1100k 1", "a.raw");
        var diff = Urldisk(q, "compare", "a.qcow2", "a.raw");
        Assert.Equal(1, diff.Exit);
        Assert.Contains($"offset {1100 * 1024}", diff.Output, StringComparison.Ordinal);
        q.Img("create", "-f", "qcow2", "big.qcow2", "8M");
        q.Io("-c", "write -P 7 1M 64k", "big.qcow2");
        Assert.Equal(0, Urldisk(q, "compare", "a.qcow2", "big.qcow2").Exit);
        Assert.Equal(1, Urldisk(q, "compare", "-s", "a.qcow2", "big.qcow2").Exit);
        Assert.Equal(2, Urldisk(q, "compare", "a.qcow2", "missing.qcow2").Exit);
    }

    [Fact]
    public void Map_json_matches_qemu_img_map_through_a_chain()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "base.qcow2", "4M");
        q.Io("-c", "write -P 1 0 1M", "-c", "write -P 2 2M 512k", "base.qcow2");
        q.Img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        q.Io("-c", "write -P 3 512k 1M", "-c", "write -z 3M 64k", "top.qcow2");
        var (exit, ours) = Urldisk(q, "map", "--output", "json", "top.qcow2");
        Assert.Equal(0, exit);
        string theirs = q.Img("map", "--output=json", "top.qcow2");
        Assert.Equal(Normalize(theirs), Normalize(ours));
        Assert.Equal(q.Img("map", "top.qcow2").Trim(), Urldisk(q, "map", "top.qcow2").Output.Trim());
    }

    [Fact]
    public void Map_json_matches_qemu_img_map_over_a_raw_backing_file()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "raw", "base.raw", "8M");
        q.Io("-f", "raw", "-c", "write -P 0x10 0 8M", "base.raw");
        q.Img("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "top.qcow2");
        q.Io("-c", "write -P 0x77 1M 300k", "-c", "write -z 4M 1M", "-c", "discard 6M 64k", "top.qcow2");
        var (exit, ours) = Urldisk(q, "map", "--output", "json", "top.qcow2");
        Assert.Equal(0, exit);
        Assert.Equal(Normalize(q.Img("map", "--output=json", "top.qcow2")), Normalize(ours));
        Assert.Equal(q.Img("map", "top.qcow2").Trim(), Urldisk(q, "map", "top.qcow2").Output.Trim());
    }

    [Fact]
    public void Info_backing_chain_lists_every_image_with_qcow2_details()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "base.qcow2", "4M");
        q.Img("snapshot", "-c", "snap1", "base.qcow2");
        q.Img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "mid.qcow2");
        q.Img("create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2");
        var (exit, output) = Urldisk(q, "info", "--backing-chain", "--output", "json", "top.qcow2");
        Assert.Equal(0, exit);
        var chain = JsonDocument.Parse(output).RootElement;
        Assert.Equal(["top.qcow2", "mid.qcow2", "base.qcow2"], chain.EnumerateArray().Select(e => e.GetProperty("filename").GetString()));
        var fs = chain[2].GetProperty("format-specific");
        Assert.Equal("qcow2", fs.GetProperty("type").GetString());
        Assert.Equal("1.1", fs.GetProperty("data").GetProperty("compat").GetString());
        Assert.Equal(65536, chain[2].GetProperty("cluster-size").GetInt32());
        Assert.Equal("snap1", chain[2].GetProperty("snapshots")[0].GetProperty("name").GetString());
    }

    private static string Normalize(string json)
    {
        // Compare entries by qemu-img's keys, ignoring whitespace and key order.
        using var doc = JsonDocument.Parse(json);
        return string.Join("\n", doc.RootElement.EnumerateArray().Select(e =>
            string.Join(",", new[] { "start", "length", "depth", "present", "zero", "data", "offset" }
                .Select(k => e.TryGetProperty(k, out var v) ? $"{k}={v}" : $"{k}=-"))));
    }

    private static void PatchU16(string path, long offset, ushort value)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        f.Write([(byte)(value >> 8), (byte)value]);
    }
}
