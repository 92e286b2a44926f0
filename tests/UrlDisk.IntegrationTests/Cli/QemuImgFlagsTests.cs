using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>Flags qemu-img users type: <c>-U</c>, <c>-q</c>, and compare's exit code 2 for usage errors.</summary>
public sealed class QemuImgFlagsTests
{
    [Fact]
    public async Task Force_share_is_accepted_by_every_verb_that_opens_images()
    {
        using var temp = new TempDir("urldisk-qemu-flags");
        string img = temp.File("img.raw");
        await File.WriteAllBytesAsync(img, new byte[1 << 20]);
        foreach (string[] args in new[]
        {
            new[] { "info", "-U", img },
            ["info", "--force-share", "--output", "json", img],
            ["map", "-U", img],
            ["compare", "-U", img, img],
            ["convert", "-U", img, temp.File("copy.raw")],
        })
        {
            var r = await UrlDiskCli.RunAsync(args);
            Assert.True(r.ExitCode == 0, $"{string.Join(' ', args)}: {r}");
        }

        Assert.Equal(1 << 20, new FileInfo(temp.File("copy.raw")).Length);
    }

    [Fact]
    public async Task Quiet_create_prints_nothing_and_still_creates()
    {
        using var temp = new TempDir("urldisk-qemu-flags");
        var loud = await UrlDiskCli.RunAsync("create", "-f", "qcow2", temp.File("a.qcow2"), "1M");
        Assert.Equal(0, loud.ExitCode);
        Assert.StartsWith("Formatting '", loud.Stdout, StringComparison.Ordinal);

        foreach (string format in new[] { "qcow2", "raw" })
        {
            string path = temp.File("q." + format);
            var quiet = await UrlDiskCli.RunAsync("create", "-q", "-f", format, path, "1M");
            Assert.Equal(0, quiet.ExitCode);
            Assert.Empty(quiet.Stdout);
            Assert.Empty(quiet.Stderr);
            Assert.True(File.Exists(path));
        }

        var convert = await UrlDiskCli.RunAsync("convert", "-q", "-p", temp.File("q.raw"), temp.File("c.raw"));
        Assert.Equal(0, convert.ExitCode);
        Assert.Empty(convert.Stdout);
    }

    [Fact]
    public async Task Compare_usage_errors_exit_2_because_1_means_different()
    {
        using var temp = new TempDir("urldisk-qemu-flags");
        string img = temp.File("img.raw");
        await File.WriteAllBytesAsync(img, new byte[4096]);
        var missing = await UrlDiskCli.RunAsync("compare", img);
        Assert.Equal(2, missing.ExitCode);
        var unknown = await UrlDiskCli.RunAsync("compare", "--bogus", img, img);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("unknown option '--bogus'", unknown.Stderr, StringComparison.Ordinal);
        Assert.Empty(unknown.Stdout);
    }

    [Fact]
    public async Task Convert_n_into_an_existing_file_leaves_its_zeros_as_holes()
    {
        using var temp = new TempDir("urldisk-qemu-flags");
        string src = temp.File("src.raw");
        string dst = temp.File("dst.raw");
        const int MiB = 1 << 20;
        var data = new byte[64 * MiB];
        Random.Shared.NextBytes(data.AsSpan(0, MiB));
        Random.Shared.NextBytes(data.AsSpan(32 * MiB, 2 * MiB));
        await File.WriteAllBytesAsync(src, data);

        // The target exists, full of other bytes: -n must leave exactly the source's bytes, and sparse.
        var junk = new byte[64 * MiB];
        Random.Shared.NextBytes(junk);
        await File.WriteAllBytesAsync(dst, junk);

        var r = await UrlDiskCli.RunAsync("convert", "-n", src, dst);
        Assert.True(r.ExitCode == 0, r.ToString());
        byte[] written = await File.ReadAllBytesAsync(dst);
        Assert.True(data.AsSpan().SequenceEqual(written), "-n target differs from the source");
        var blocks = await ProcessRunner.RunAsync("stat", ["-c", "%b", dst]);
        long allocated = long.Parse(blocks.Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture) * 512;
        Assert.True(allocated <= 8L * MiB, $"{allocated} bytes allocated for 3 MiB of data (qemu-img -n leaves ~3 MiB)");
    }
}
