using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary><c>measure</c> prints what qemu-img measure prints, for raw and qcow2 targets, from sizes, files and URLs.</summary>
public sealed class MeasureTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    private static Task<ProcessResult> UrlDiskAsync(QemuTools q, params string[] args) => UrlDiskCli.RunAsync(args, workingDirectory: q.Dir);

    /// <summary>Sources qemu-img wrote: a sparse raw file with data, an odd-sized raw, qcow2 plain, compressed and with a backing file.</summary>
    private static void MakeSources(QemuTools q)
    {
        q.Img("create", "-f", "raw", "data.raw", "10M");
        q.Io("-f", "raw", "-c", "write -P 1 1M 100k", "-c", "write 5M 64k", "-c", "write -P 3 9M 4k", "data.raw");
        File.WriteAllBytes(q.PathOf("odd.raw"), Enumerable.Range(0, 1000).Select(i => (byte)(i + 1)).ToArray());
        q.Img("convert", "-O", "qcow2", "data.raw", "data.qcow2");
        q.Img("convert", "-c", "-O", "qcow2", "-o", "cluster_size=4k", "data.raw", "small.qcow2");
        q.Img("convert", "-O", "qcow2", "-o", "compat=0.10", "data.raw", "v2.qcow2");
        q.Img("create", "-f", "qcow2", "-b", "data.qcow2", "-F", "qcow2", "top.qcow2", "12M");
        q.Io("-c", "write -P 4 8M 1M", "-c", "write -z 1M 64k", "top.qcow2");
    }

    [Fact]
    public async Task Output_matches_qemu_img_for_every_target_and_source()
    {
        using var q = new QemuTools();
        MakeSources(q);
        string[][] cases =
        [
            ["--size", "1G", "-O", "qcow2"],
            ["--size", "1G", "-O", "raw", "--output=json"],
            ["--size", "1000", "-O", "qcow2", "-o", "cluster_size=512"],
            ["--size", "5G", "-O", "qcow2", "-o", "extended_l2=on,refcount_bits=1"],
            ["--size", "100G", "-O", "qcow2", "-o", "cluster_size=2M,refcount_bits=64", "--output", "json"],
            ["-O", "qcow2", "data.raw"],
            ["-O", "qcow2", "--output", "json", "data.raw"],
            ["-O", "raw", "data.raw"],
            ["-O", "raw", "odd.raw"],
            ["-O", "qcow2", "odd.raw"],
            ["-O", "qcow2", "data.qcow2"],
            ["-O", "qcow2", "--output=json", "data.qcow2"],
            ["-O", "qcow2", "-o", "compat=0.10", "data.qcow2"],
            ["-O", "raw", "--output=json", "data.qcow2"],
            ["-O", "qcow2", "-o", "cluster_size=512", "small.qcow2"],
            ["-O", "qcow2", "-o", "cluster_size=2M", "small.qcow2"],
            ["-O", "qcow2", "-o", "cluster_size=4k,refcount_bits=8", "top.qcow2"],
            ["-O", "qcow2", "-o", "preallocation=full", "top.qcow2"],
            ["-O", "qcow2", "-o", "backing_file=data.qcow2,backing_fmt=qcow2", "top.qcow2"],
            ["-O", "qcow2", "-f", "raw", "top.qcow2"],
            ["-O", "qcow2", "v2.qcow2"],
        ];
        foreach (var args in cases)
        {
            string expected = q.Img(["measure", .. args]);
            var ours = await UrlDiskAsync(q, ["measure", .. args]);
            Assert.True(ours.ExitCode == 0, $"measure {string.Join(' ', args)}: {ours}");
            Assert.True(expected == ours.Stdout, $"measure {string.Join(' ', args)}:\nqemu-img:\n{expected}\nurldisk:\n{ours.Stdout}");
        }
    }

    [Fact]
    public async Task A_url_measures_as_the_same_file_does_with_qemu_img()
    {
        using var q = new QemuTools();
        MakeSources(q);
        string url = fixture.Server.HttpUrl(fixture.Server.Put($"measure-{Guid.NewGuid():N}/data.qcow2", File.ReadAllBytes(q.PathOf("data.qcow2"))));
        foreach (string[] args in new[] { new[] { "-O", "qcow2", "--output=json" }, ["-O", "qcow2", "-o", "cluster_size=16k"], ["-O", "raw"] })
        {
            string expected = q.Img(["measure", .. args, "data.qcow2"]);
            var ours = await UrlDiskAsync(q, ["measure", .. args, url]);
            Assert.True(ours.ExitCode == 0, ours.ToString());
            Assert.Equal(expected, ours.Stdout);
        }

        // The JSON keys qemu-img uses, bitmaps first (a qcow2 source into a v3 target).
        var json = await UrlDiskAsync(q, "measure", "-O", "qcow2", "--output", "json", url);
        Assert.StartsWith("{\n    \"bitmaps\": 0,\n    \"required\": ", json.Stdout, StringComparison.Ordinal);
        Assert.Contains("\"fully-allocated\": ", json.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_input_is_one_line_and_exit_1()
    {
        using var q = new QemuTools();
        MakeSources(q);
        foreach (var (args, words) in new (string[], string)[]
        {
            (["measure", "--size", "1G", "data.raw"], "cannot be used together"),
            (["measure", "-O", "qcow2"], "--size N or one filename"),
            (["measure", "-O", "vmdk", "--size", "1G"], "raw and qcow2"),
            (["measure", "-O", "qcow2", "-o", "bogus=1", "--size", "1G"], "bogus"),
            (["measure", "-O", "qcow2", "--size", "1x"], "1x"),
            (["measure", "-O", "qcow2", "--size", "1G", "--output=xml"], "human or json"),
            (["measure", "-O", "qcow2", "-o", "preallocation=sometimes", "--size", "1G"], "preallocation"),
            (["measure", "-O", "qcow2", "missing.raw"], "missing.raw"),
        })
        {
            var r = await UrlDiskAsync(q, args);
            Assert.Equal(1, r.ExitCode);
            string err = CliAssert.Fails(r, words);
            Assert.Single(err.Split('\n'));
            Assert.Empty(r.Stdout);
        }
    }
}
