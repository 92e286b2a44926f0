using System.Buffers.Binary;
using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;

namespace UrlDisk.IntegrationTests.Formats;

/// <summary>
/// <c>urldisk check</c> on vmdk, vhdx and vdi images made by qemu-img, sound and with bytes patched, against
/// <c>qemu-img check</c> 7.2: exit code, JSON (parsed) and the human output (problem lines on stderr, summary on
/// stdout) the same. qemu-img prefixes some lines with its name where urldisk prints none or its own; that prefix
/// aside, the words are the same.
/// </summary>
public sealed class FormatCheckParityTests
{
    private static (int Exit, string Stdout, string Stderr) Urldisk(QemuTools q, params string[] args) => q.RunAll(UrlDiskCli.Launcher, args);

    /// <summary>Image (as <see cref="Make"/> builds it), patch, the exit code qemu-img gives.</summary>
    public static TheoryData<string, string, int> Cases => new()
    {
        { "vdi-dynamic", "none", 0 },
        { "vdi-static", "none", 0 },
        { "vdi-dynamic", "vdi-duplicate-block", 2 },
        { "vdi-dynamic", "vdi-block-too-large", 2 },
        { "vdi-dynamic", "vdi-allocated-count", 2 },
        { "vdi-static", "vdi-duplicate-block", 2 },
        { "vmdk-monolithicSparse", "none", 0 },
        { "vmdk-streamOptimized", "none", 0 },
        { "vmdk-twoGbMaxExtentSparse", "none", 0 },
        { "vmdk-monolithicSparse", "vmdk-grain-past-eof", 1 },
        { "vmdk-monolithicSparse", "vmdk-table-past-eof", 0 },
        { "vmdk-streamOptimized", "vmdk-grain-past-eof", 1 },
        { "vmdk-twoGbMaxExtentSparse", "vmdk-grain-past-eof", 1 },
        { "vhdx-dynamic", "none", 0 },
        { "vhdx-dynamic", "vhdx-block-past-eof", 2 },
        { "vhdx-dynamic", "vhdx-block-ends-past-eof", 2 },
        { "vhdx-dynamic", "vhdx-block-over-metadata", 2 },
        { "vhdx-dynamic", "vhdx-offset-overflow", 2 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Check_matches_qemu_img(string image, string patch, int expectedExit)
    {
        using var q = new QemuTools();
        string name = Make(q, image);
        Patch(q, name, patch);
        var before = File.ReadAllBytes(q.PathOf(PatchedFile(name)));

        var qemu = q.RunAll("qemu-img", "check", name);
        var ours = Urldisk(q, "check", name);
        Assert.True(qemu.Exit == expectedExit, $"qemu-img check exited {qemu.Exit}: {qemu.Stdout}{qemu.Stderr}");
        Assert.True(ours.Exit == qemu.Exit, $"urldisk check exited {ours.Exit}, qemu-img {qemu.Exit}\nurldisk: {ours.Stdout}{ours.Stderr}\nqemu-img: {qemu.Stdout}{qemu.Stderr}");
        Assert.Equal(qemu.Stdout, ours.Stdout);
        Assert.Equal(Unprefixed(qemu.Stderr), Unprefixed(ours.Stderr));

        var qemuJson = q.RunAll("qemu-img", "check", "--output=json", name);
        var ourJson = Urldisk(q, "check", "--output", "json", name);
        Assert.Equal(qemuJson.Exit, ourJson.Exit);
        AssertSameJson(qemuJson.Stdout, ourJson.Stdout);
        Assert.Equal(before, File.ReadAllBytes(q.PathOf(PatchedFile(name))));
    }

    /// <summary>qemu-img has no repair for vmdk and vdi (exit 63, "does not support checks"); for vhdx -r checks as without.</summary>
    [Theory]
    [InlineData("vdi-dynamic", "vdi-duplicate-block")]
    [InlineData("vmdk-monolithicSparse", "none")]
    [InlineData("vhdx-dynamic", "none")]
    [InlineData("vhdx-dynamic", "vhdx-block-past-eof")]
    public void Repair_does_what_qemu_img_does(string image, string patch)
    {
        using var q = new QemuTools();
        string name = Make(q, image);
        Patch(q, name, patch);
        var before = File.ReadAllBytes(q.PathOf(name));
        foreach (string mode in new[] { "leaks", "all" })
        {
            var qemu = q.RunAll("qemu-img", "check", "-r", mode, "--output=json", name);
            var ours = Urldisk(q, "check", "-r", mode, "--output", "json", name);
            Assert.True(ours.Exit == qemu.Exit, $"-r {mode}: urldisk exited {ours.Exit}, qemu-img {qemu.Exit}\nurldisk: {ours.Stdout}{ours.Stderr}\nqemu-img: {qemu.Stdout}{qemu.Stderr}");
            if (qemu.Exit == 63)
            {
                Assert.Contains("does not support checks", ours.Stderr, StringComparison.Ordinal);
                Assert.Equal("", ours.Stdout);
            }
            else
            {
                AssertSameJson(qemu.Stdout, ours.Stdout);
            }

            Assert.Equal(before, File.ReadAllBytes(q.PathOf(name)));
        }
    }

    /// <summary>A log needing replay: both refuse to check it read-only; with -r both replay it into the file and report one corruption fixed.</summary>
    [Fact]
    public async Task Dirty_vhdx_log_is_replayed_by_repair_as_qemu_img_does()
    {
        using var q = new QemuTools();
        var (_, dirty) = await DirtyVhdx.MakeAsync(q);
        var qemuRefuses = q.RunAll("qemu-img", "check", "dirty.vhdx");
        var oursRefuses = Urldisk(q, "check", "dirty.vhdx");
        Assert.Equal(1, qemuRefuses.Exit);
        Assert.True(oursRefuses.Exit == 1, $"urldisk check exited {oursRefuses.Exit}: {oursRefuses.Stdout}{oursRefuses.Stderr}");
        Assert.Contains("log that needs to be replayed", oursRefuses.Stderr, StringComparison.Ordinal);
        Assert.Equal(dirty, File.ReadAllBytes(q.PathOf("dirty.vhdx")));

        foreach (string output in new[] { "human", "json" })
        {
            File.WriteAllBytes(q.PathOf("qemu.vhdx"), dirty);
            File.WriteAllBytes(q.PathOf("ours.vhdx"), dirty);
            var qemu = q.RunAll("qemu-img", "check", "-r", "all", $"--output={output}", "qemu.vhdx");
            var ours = Urldisk(q, "check", "-r", "all", "--output", output, "ours.vhdx");
            Assert.True(ours.Exit == qemu.Exit, $"urldisk exited {ours.Exit}, qemu-img {qemu.Exit}\nurldisk: {ours.Stdout}{ours.Stderr}\nqemu-img: {qemu.Stdout}{qemu.Stderr}");
            if (output == "json")
            {
                AssertSameJson(qemu.Stdout.Replace("qemu.vhdx", "ours.vhdx", StringComparison.Ordinal), ours.Stdout);
            }
            else
            {
                Assert.Equal(qemu.Stdout, ours.Stdout);
            }

            // The log is gone from our file: qemu-img opens it read-only, finds it sound, and reads what qemu's replay gave.
            q.Img("check", "ours.vhdx");
            Assert.Equal(0, q.RunAll("qemu-img", "compare", "-f", "vhdx", "-F", "vhdx", "qemu.vhdx", "ours.vhdx").Exit);
        }
    }

    [Fact]
    public async Task Check_over_http_matches_qemu_img()
    {
        using var q = new QemuTools();
        await using var nginx = await NginxServer.StartAsync();
        foreach (var (image, patch) in new[] { ("vdi-dynamic", "vdi-duplicate-block"), ("vhdx-dynamic", "vhdx-block-past-eof"), ("vmdk-monolithicSparse", "vmdk-grain-past-eof") })
        {
            string name = Make(q, image);
            Patch(q, name, patch);
            string url = nginx.HttpUrl(nginx.Put(name, File.ReadAllBytes(q.PathOf(name))));
            var qemu = await QemuImg.RunAsync("check", "--output=json", url);
            var ours = await UrlDiskCli.RunAsync("check", "--output", "json", url);
            Assert.True(ours.ExitCode == qemu.ExitCode, $"{image} {patch} over http: urldisk {ours}, qemu-img {qemu}");
            AssertSameJson(qemu.Stdout, ours.Stdout);
        }
    }

    [Fact]
    public void Hostile_headers_get_a_clear_error_not_a_crash()
    {
        using var q = new QemuTools();
        string vmdk = Make(q, "vmdk-monolithicSparse");
        var bytes = File.ReadAllBytes(q.PathOf(vmdk));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(12), 1UL << 42); // capacity 2 PiB: a grain directory of 64 M entries
        File.WriteAllBytes(q.PathOf("huge-gd.vmdk"), bytes);

        string vdi = Make(q, "vdi-dynamic");
        bytes = File.ReadAllBytes(q.PathOf(vdi));
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(384), 30u << 20); // 30 M blocks: a block map far beyond the file
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(368), 1UL << 40);
        File.WriteAllBytes(q.PathOf("huge-map.vdi"), bytes);

        string vhdx = Make(q, "vhdx-dynamic");
        bytes = File.ReadAllBytes(q.PathOf(vhdx));
        var (batOffset, _) = VhdxRegion(bytes, "2DC27766-F623-4200-9D64-115E9BFD4A08");
        for (int i = 0; i < 64; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((int)batOffset + (i * 8)), 0xFFFFFFFFFFF00006UL); // present, at an offset that overflows
        }

        File.WriteAllBytes(q.PathOf("overflow.vhdx"), bytes);

        foreach (var (file, says) in new[] { ("huge-gd.vmdk", "grain directory"), ("huge-map.vdi", "block map"), ("overflow.vhdx", "VHDX BAT entry 0 offset overflow.") })
        {
            var ours = Urldisk(q, "check", file);
            Assert.True(ours.Exit is 1 or 2, $"{file}: exit {ours.Exit}: {ours.Stdout}{ours.Stderr}");
            Assert.DoesNotContain("Unhandled", ours.Stderr, StringComparison.Ordinal);
            Assert.Contains(says, ours.Stderr, StringComparison.Ordinal);
        }
    }

    private static string Make(QemuTools q, string image)
    {
        switch (image)
        {
            case "vdi-dynamic":
                q.Img("create", "-f", "vdi", "d.vdi", "8M");
                q.Io("-f", "vdi", "-c", "write -P 1 0 3M", "d.vdi");
                return "d.vdi";
            case "vdi-static":
                q.Img("create", "-f", "vdi", "-o", "static=on", "s.vdi", "4M");
                return "s.vdi";
            case "vhdx-dynamic":
                q.Img("create", "-f", "vhdx", "d.vhdx", "8M");
                q.Io("-f", "vhdx", "-c", "write -P 1 0 3M", "d.vhdx");
                return "d.vhdx";
            case "vmdk-streamOptimized":
                q.Img("create", "-f", "raw", "src.raw", "8M");
                q.Io("-f", "raw", "-c", "write -P 1 0 1M", "-c", "write -P 2 5M 64k", "src.raw");
                q.Img("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "src.raw", "so.vmdk");
                return "so.vmdk";
            default:
                string subformat = image["vmdk-".Length..];
                q.Img("create", "-f", "vmdk", "-o", $"subformat={subformat}", $"{subformat}.vmdk", "8M");
                q.Io("-f", "vmdk", "-c", "write -P 1 0 1M", $"{subformat}.vmdk");
                return $"{subformat}.vmdk";
        }
    }

    /// <summary>The file a patch changes: a twoGbMaxExtentSparse descriptor's first extent, else the image itself.</summary>
    private static string PatchedFile(string name) => name == "twoGbMaxExtentSparse.vmdk" ? "twoGbMaxExtentSparse-s001.vmdk" : name;

    private static void Patch(QemuTools q, string name, string patch)
    {
        if (patch == "none")
        {
            return;
        }

        string path = q.PathOf(PatchedFile(name));
        var b = File.ReadAllBytes(path);
        switch (patch)
        {
            case "vdi-duplicate-block":
                {
                    int map = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(340));
                    BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(map + 12), 1);
                    break;
                }

            case "vdi-block-too-large":
                {
                    int map = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(340));
                    BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(map), 100);
                    break;
                }

            case "vdi-allocated-count":
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(388), 7);
                break;
            case "vmdk-grain-past-eof":
            case "vmdk-table-past-eof":
                {
                    long gd = (long)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(56));
                    if (gd == -1)
                    {
                        gd = (long)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(b.Length - 1024 + 56)); // streamOptimized: the footer's
                    }

                    int gdAt = (int)(gd * 512);
                    if (patch == "vmdk-table-past-eof")
                    {
                        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(gdAt + 4), 999_999);
                        break;
                    }

                    int gt = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(gdAt)) * 512;
                    BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(gt + 8), 999_999);
                    break;
                }

            default:
                {
                    var (bat, _) = VhdxRegion(b, "2DC27766-F623-4200-9D64-115E9BFD4A08");
                    var (meta, _) = VhdxRegion(b, "8B7CA206-4790-4B9A-B8FE-575F050F886E");
                    ulong entry = patch switch
                    {
                        "vhdx-block-past-eof" => (100UL << 20) | 6,
                        "vhdx-block-ends-past-eof" => ((ulong)b.Length - (1UL << 20)) | 6,
                        "vhdx-block-over-metadata" => (ulong)meta | 6,
                        _ => 0xFFFFFFFFFFF00000UL | 6,
                    };
                    BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan((int)bat), entry);
                    break;
                }
        }

        File.WriteAllBytes(path, b);
    }

    /// <summary>The offset and length of a region in a vhdx's first region table.</summary>
    private static (long Offset, long Length) VhdxRegion(byte[] b, string guid)
    {
        const int table = 192 * 1024;
        int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(table + 8));
        for (int i = 0; i < count; i++)
        {
            int at = table + 16 + (i * 32);
            if (new Guid(b.AsSpan(at, 16)) == Guid.Parse(guid))
            {
                return ((long)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(at + 16)), BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at + 24)));
            }
        }

        throw new InvalidOperationException($"no region {guid}");
    }

    private static string Unprefixed(string stderr)
        => string.Join('\n', stderr.Split('\n').Select(l => l.StartsWith("qemu-img: ", StringComparison.Ordinal) ? l["qemu-img: ".Length..] : l.StartsWith("urldisk: ", StringComparison.Ordinal) ? l["urldisk: ".Length..] : l));

    /// <summary>The same keys and values, whatever their order; no JSON at all from either when the check itself failed.</summary>
    private static void AssertSameJson(string qemu, string ours)
    {
        if (qemu.Length == 0)
        {
            Assert.Equal("", ours);
            return;
        }

        var q = JsonNode.Parse(qemu)!.AsObject();
        var u = JsonNode.Parse(ours)!.AsObject();
        Assert.Equal(q.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value?.ToJsonString()}"), u.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value?.ToJsonString()}"));
    }
}
