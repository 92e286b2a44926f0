using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>
/// Resizing a qcow2 image that has internal snapshots, and applying a snapshot taken at another virtual size,
/// step by step on two copies of one image: qemu-img 7.2 edits one, urldisk the other, and after every step both
/// must give the same virtual size, the same snapshot list, the same bytes (read by qemu-img, also each
/// snapshot's) and a clean qemu-img check.
/// </summary>
public sealed class SnapshotSizeTests
{
    private static readonly string[][] Steps =
    [
        ["resize", "{0}", "12M"],
        ["io", "write -P 0x22 10M 64k"],
        ["io", "write -P 0x23 2M 64k"],
        ["qemu-snapshot", "big"],
        ["resize", "--shrink", "{0}", "2M"],
        ["io", "write -P 0x24 0 64k"],
        ["snapshot", "-a", "small", "{0}"],
        ["snapshot", "-a", "big", "{0}"],
        ["resize", "{0}", "+512k"],
        ["snapshot", "-a", "1", "{0}"],
        ["snapshot", "-d", "small", "{0}"],
        ["resize", "--shrink", "{0}", "1M"],
    ];

    [Theory]
    [InlineData("compat=1.1")]
    [InlineData("cluster_size=4k")]
    public async Task Resize_and_apply_across_sizes_match_qemu_img(string createOptions)
    {
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "qcow2", "-o", createOptions, "qemu.qcow2", "4M");
        q.Io("-c", "write -P 0x11 0 1M", "-c", "write -P 0x12 3M 64k", "qemu.qcow2");
        q.Img("snapshot", "-c", "small", "qemu.qcow2");
        File.Copy(q.PathOf("qemu.qcow2"), q.PathOf("urldisk.qcow2"));

        foreach (var step in Steps)
        {
            string what = string.Join(' ', step);
            switch (step[0])
            {
                case "io":
                    q.Io("-c", step[1], "qemu.qcow2");
                    q.Io("-c", step[1], "urldisk.qcow2");
                    break;
                case "qemu-snapshot":
                    // Made once and copied, so the two lists agree to the nanosecond.
                    q.Img("snapshot", "-c", step[1], "qemu.qcow2");
                    File.Copy(q.PathOf("qemu.qcow2"), q.PathOf("urldisk.qcow2"), overwrite: true);
                    break;
                default:
                    var (exit, stdout, stderr) = q.RunAll("qemu-img", Fill(step, "qemu.qcow2"));
                    var ours = await UrlDiskCli.RunAsync(Fill(step, q.PathOf("urldisk.qcow2")));
                    Assert.True(exit == 0, $"qemu-img {what}: {exit} {stdout}{stderr}");
                    Assert.True(ours.ExitCode == 0, $"urldisk {what}: {ours}");
                    Assert.Equal(stdout, ours.Stdout);
                    break;
            }

            AssertSame(q, what);
        }
    }

    [Fact]
    public async Task A_v2_image_with_snapshots_is_not_resized_as_in_qemu_img()
    {
        // qcow2 v2 snapshots do not record the virtual size they were taken at, so qemu-img refuses.
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "4M");
        q.Io("-c", "write -P 0x11 0 1M", "v2.qcow2");
        q.Img("snapshot", "-c", "small", "v2.qcow2");
        File.Copy(q.PathOf("v2.qcow2"), q.PathOf("copy.qcow2"));
        var before = File.ReadAllBytes(q.PathOf("v2.qcow2"));

        var (exit, _, stderr) = q.RunAll("qemu-img", "resize", "v2.qcow2", "8M");
        Assert.Equal(1, exit);
        Assert.Contains("Can't resize a v2 image which has snapshots", stderr, StringComparison.Ordinal);
        var ours = await UrlDiskCli.RunAsync("resize", q.PathOf("copy.qcow2"), "8M");
        Assert.True(ours.ExitCode == 1, ours.ToString());
        Assert.Equal("urldisk: Can't resize a v2 image which has snapshots (upgrade it with 'urldisk amend -o compat=1.1' first)\n", ours.Stderr);
        Assert.Equal(before, File.ReadAllBytes(q.PathOf("copy.qcow2")));
    }

    private static string[] Fill(string[] step, string image) => [.. step.Select(a => a == "{0}" ? image : a)];

    private static void AssertSame(QemuTools q, string step)
    {
        var qemu = Info(q, "qemu.qcow2");
        var ours = Info(q, "urldisk.qcow2");
        Assert.True(qemu["virtual-size"]!.GetValue<long>() == ours["virtual-size"]!.GetValue<long>(), $"after {step}: virtual size qemu-img {qemu["virtual-size"]}, urldisk {ours["virtual-size"]}");
        Assert.True(JsonNode.DeepEquals(qemu["snapshots"], ours["snapshots"]), $"after {step}: snapshots qemu-img {qemu["snapshots"]?.ToJsonString()}, urldisk {ours["snapshots"]?.ToJsonString()}");
        foreach (string image in new[] { "qemu.qcow2", "urldisk.qcow2" })
        {
            var (exit, stdout, stderr) = q.RunAll("qemu-img", "check", image);
            Assert.True(exit == 0 && stdout.Contains("No errors were found on the image.", StringComparison.Ordinal), $"after {step}: qemu-img check {image} exited {exit}: {stdout}{stderr}");
        }

        QemuTools.AssertSameBytes(q.QemuRaw("qemu.qcow2"), q.QemuRaw("urldisk.qcow2"));
        foreach (var snapshot in (qemu["snapshots"] as JsonArray) ?? [])
        {
            string name = snapshot!["name"]!.GetValue<string>();
            q.Img("convert", "-l", "snapshot.name=" + name, "-O", "raw", "qemu.qcow2", "qemu-snapshot.raw");
            q.Img("convert", "-l", "snapshot.name=" + name, "-O", "raw", "urldisk.qcow2", "urldisk-snapshot.raw");
            QemuTools.AssertSameBytes(File.ReadAllBytes(q.PathOf("qemu-snapshot.raw")), File.ReadAllBytes(q.PathOf("urldisk-snapshot.raw")));
        }
    }

    private static JsonObject Info(QemuTools q, string image) => JsonNode.Parse(q.Img("info", "--output", "json", image))!.AsObject();
}
