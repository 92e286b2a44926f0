using System.Text.Json.Nodes;
using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>
/// Differential tests: every image of <see cref="QemuImgCorpus"/>, locally and over http, through qemu-img 7.2 and
/// urldisk for each verb both have (info, info --backing-chain, map, check, compare). JSON is compared parsed, field
/// by field (UrlDisk's one extra key, <c>urldisk</c>, aside); human output and exit codes exactly. A difference is
/// allowed only where <see cref="KnownDifferences"/> lists it with its reason (the README's "Differences from
/// qemu-img" table), and a listed difference that has gone away fails too, so the list stays true.
/// </summary>
public sealed class QemuImgDifferentialTests(QemuImgCorpus corpus) : IClassFixture<QemuImgCorpus>
{
    /// <summary>"verb image where" → why urldisk differs.</summary>
    private static readonly Dictionary<string, string> KnownDifferences = new()
    {
        ["check disk.vmdk local"] = "urldisk checks qcow2 only; qemu-img also checks vmdk (exit 63 here, 0 there)",
        ["check disk.vmdk http"] = "urldisk checks qcow2 only; qemu-img also checks vmdk (exit 63 here, 0 there)",
        ["check-human disk.vmdk local"] = "urldisk checks qcow2 only; qemu-img also checks vmdk (exit 63 here, 0 there)",
        ["check-human disk.vmdk http"] = "urldisk checks qcow2 only; qemu-img also checks vmdk (exit 63 here, 0 there)",
        ["check vmdk-base.vmdk local"] = "urldisk checks qcow2 only; qemu-img also checks vmdk (exit 63 here, 0 there)",
        ["check vmdk-base.vmdk http"] = "urldisk checks qcow2 only; qemu-img also checks vmdk (exit 63 here, 0 there)",
        ["check-human vmdk-base.vmdk local"] = "urldisk checks qcow2 only; qemu-img also checks vmdk (exit 63 here, 0 there)",
        ["check-human vmdk-base.vmdk http"] = "urldisk checks qcow2 only; qemu-img also checks vmdk (exit 63 here, 0 there)",
        ["check vmdk-child.vmdk local"] = "urldisk checks qcow2 only; qemu-img also checks vmdk (exit 63 here, 0 there)",
        ["check vmdk-child.vmdk http"] = "urldisk checks qcow2 only; qemu-img also checks vmdk (exit 63 here, 0 there)",
        ["check-human vmdk-child.vmdk local"] = "urldisk checks qcow2 only; qemu-img also checks vmdk (exit 63 here, 0 there)",
        ["check-human vmdk-child.vmdk http"] = "urldisk checks qcow2 only; qemu-img also checks vmdk (exit 63 here, 0 there)",
    };

    public static TheoryData<string, string> ImagesAndPlaces()
    {
        var data = new TheoryData<string, string>();
        foreach (string image in QemuImgCorpus.Images)
        {
            data.Add(image, "local");
            data.Add(image, "http");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ImagesAndPlaces))]
    public Task Info_json_matches(string image, string where) => JsonVerbAsync("info", image, where, ["info", "--output", "json"]);

    [Theory]
    [MemberData(nameof(ImagesAndPlaces))]
    public Task Info_backing_chain_json_matches(string image, string where) => JsonVerbAsync("info-chain", image, where, ["info", "--backing-chain", "--output", "json"]);

    [Theory]
    [MemberData(nameof(ImagesAndPlaces))]
    public Task Info_human_matches(string image, string where) => TextVerbAsync("info-human", image, where, ["info"]);

    [Theory]
    [MemberData(nameof(ImagesAndPlaces))]
    public Task Info_backing_chain_human_matches(string image, string where) => TextVerbAsync("info-chain-human", image, where, ["info", "--backing-chain"]);

    [Theory]
    [MemberData(nameof(ImagesAndPlaces))]
    public Task Map_json_matches(string image, string where) => JsonVerbAsync("map", image, where, ["map", "--output", "json"]);

    [Theory]
    [MemberData(nameof(ImagesAndPlaces))]
    public Task Map_json_of_a_range_matches(string image, string where) => JsonVerbAsync("map-range", image, where, ["map", "--output", "json", "--start-offset", "1000", "--max-length", "3M"]);

    [Theory]
    [MemberData(nameof(ImagesAndPlaces))]
    public Task Map_human_matches(string image, string where) => TextVerbAsync("map-human", image, where, ["map"]);

    [Theory]
    [MemberData(nameof(ImagesAndPlaces))]
    public Task Check_json_and_exit_code_match(string image, string where) => JsonVerbAsync("check", image, where, ["check", "--output", "json"]);

    [Theory]
    [MemberData(nameof(ImagesAndPlaces))]
    public Task Check_human_and_exit_code_match(string image, string where) => TextVerbAsync("check-human", image, where, ["check"]);

    [Theory]
    [InlineData("top.qcow2", "top-flat.raw", "local")]
    [InlineData("top.qcow2", "top-flat.raw", "http")]
    [InlineData("top.qcow2", "top-changed.raw", "local")]
    [InlineData("top.qcow2", "top-changed.raw", "http")]
    [InlineData("sparse.raw", "disk.vmdk", "local")]
    [InlineData("sparse.raw", "compressed.qcow2", "http")]
    [InlineData("sparse.raw", "v3.qcow2", "local")]
    [InlineData("v2.qcow2", "v3.qcow2", "http")]
    [InlineData("sparse.raw", "sparse-longer.raw", "local")]
    [InlineData("sparse-longer.raw", "sparse.raw", "http")]
    [InlineData("disk.vpc", "sparse.raw", "http")]
    public async Task Compare_output_and_exit_code_match(string a, string b, string where)
    {
        var (q, u) = await BothAsync(["compare", corpus.Name(a, where), corpus.Name(b, where)], where);
        Assert.True(q.ExitCode is 0 or 1, $"qemu-img compare failed: {q}");
        Assert.True(q.ExitCode == u.ExitCode && q.Stdout == u.Stdout, $"compare {a} {b} ({where})\nqemu-img: {q}\nurldisk: {u}");
    }

    private async Task JsonVerbAsync(string verb, string image, string where, string[] args)
    {
        var (q, u) = await BothAsync([.. args, corpus.Name(image, where)], where);
        var differences = new List<string>();
        if (q.ExitCode != u.ExitCode)
        {
            differences.Add($"exit code: qemu-img {q.ExitCode}, urldisk {u.ExitCode}");
        }

        if (q.Stdout.Length == 0 || u.Stdout.Length == 0)
        {
            if (q.Stdout.Length != u.Stdout.Length)
            {
                differences.Add($"stdout: qemu-img printed {q.Stdout.Length} characters, urldisk {u.Stdout.Length}");
            }
        }
        else
        {
            JsonDifferences(Parse(q, "qemu-img"), Parse(u, "urldisk"), "$", differences);
        }

        Judge($"{verb} {image} {where}", differences, q, u);
    }

    private async Task TextVerbAsync(string verb, string image, string where, string[] args)
    {
        var (q, u) = await BothAsync([.. args, corpus.Name(image, where)], where);
        var differences = new List<string>();
        if (q.ExitCode != u.ExitCode)
        {
            differences.Add($"exit code: qemu-img {q.ExitCode}, urldisk {u.ExitCode}");
        }

        string ours = WithoutExtras(u.Stdout);
        if (q.Stdout != ours)
        {
            differences.Add($"stdout differs:\n--- qemu-img\n{q.Stdout}--- urldisk (extras removed)\n{ours}");
        }

        Judge($"{verb} {image} {where}", differences, q, u);
    }

    private static void Judge(string key, List<string> differences, ProcessResult q, ProcessResult u)
    {
        if (KnownDifferences.TryGetValue(key, out string? reason))
        {
            Assert.True(differences.Count > 0, $"{key}: listed as a known difference ({reason}) but the outputs now agree: remove it from the list and the README");
            return;
        }

        Assert.True(differences.Count == 0, $"{key}:\n{string.Join('\n', differences)}\nqemu-img: {q}\nurldisk: {u}");
    }

    private async Task<(ProcessResult Qemu, ProcessResult UrlDisk)> BothAsync(string[] args, string where)
    {
        var q = where == "http" ? await QemuImg.RunAsync(args) : await ProcessRunner.RunAsync(ProcessRunner.RequireTool("qemu-img", "qemu-utils"), args, workingDirectory: corpus.Dir);
        var u = await UrlDiskCli.RunAsync(args, workingDirectory: corpus.Dir);
        return (q, u);
    }

    private static JsonNode? Parse(ProcessResult r, string tool)
    {
        try
        {
            return JsonNode.Parse(r.Stdout);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidOperationException($"{tool} printed no JSON ({e.Message}): {r}", e);
        }
    }

    /// <summary>Each place the two documents differ, by JSON path; urldisk's extra key is not compared.</summary>
    private static void JsonDifferences(JsonNode? qemu, JsonNode? ours, string path, List<string> differences)
    {
        switch (qemu, ours)
        {
            case (JsonObject q, JsonObject u):
                foreach (var (key, value) in q)
                {
                    if (!u.ContainsKey(key))
                    {
                        differences.Add($"{path}.{key}: qemu-img {value?.ToJsonString()}, urldisk has no such key");
                    }
                    else
                    {
                        JsonDifferences(value, u[key], $"{path}.{key}", differences);
                    }
                }

                foreach (var (key, value) in u)
                {
                    if (!q.ContainsKey(key) && key != "urldisk")
                    {
                        differences.Add($"{path}.{key}: urldisk {value?.ToJsonString()}, qemu-img has no such key");
                    }
                }

                break;
            case (JsonArray q, JsonArray u):
                if (q.Count != u.Count)
                {
                    differences.Add($"{path}: qemu-img has {q.Count} entries, urldisk {u.Count}");
                }

                for (int i = 0; i < Math.Min(q.Count, u.Count); i++)
                {
                    JsonDifferences(q[i], u[i], $"{path}[{i}]", differences);
                }

                break;
            default:
                if (!JsonNode.DeepEquals(qemu, ours))
                {
                    differences.Add($"{path}: qemu-img {qemu?.ToJsonString()}, urldisk {ours?.ToJsonString()}");
                }

                break;
        }
    }

    /// <summary>Human output without urldisk's extra block ("UrlDisk information:" and its indented lines).</summary>
    private static string WithoutExtras(string text)
    {
        var kept = new List<string>();
        bool inExtras = false;
        foreach (string line in text.Split('\n'))
        {
            if (line == "UrlDisk information:")
            {
                inExtras = true;
                continue;
            }

            if (inExtras && line.StartsWith(' '))
            {
                continue;
            }

            inExtras = false;
            kept.Add(line);
        }

        return string.Join('\n', kept);
    }
}
