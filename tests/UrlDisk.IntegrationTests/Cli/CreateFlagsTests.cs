using System.Text.Json;
using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;
using static UrlDisk.IntegrationTests.Cli.QemuImgParity;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>create's qemu-img flags: -o size/backing_file/backing_fmt, -o preallocation, -o help, -q; judged by qemu-img.</summary>
public sealed class CreateFlagsTests
{
    private static async Task<JsonElement> InfoAsync(string image)
        => JsonDocument.Parse((await QemuImgOkAsync("info", "--output", "json", image)).Stdout).RootElement;

    [Fact]
    public async Task O_size_and_backing_file_make_the_image_qemu_img_makes()
    {
        using var temp = new TempDir("urldisk-create-flags");
        string baseRaw = temp.File("base.raw");
        await File.WriteAllBytesAsync(baseRaw, ImageFactory.Random(3 << 20, 3));

        foreach (string options in new[] { "size=4M", "backing_file=base.raw,backing_fmt=raw", "backing_file=base.raw,backing_fmt=raw,size=5M" })
        {
            string q = temp.File($"q-{options.Length}.qcow2");
            string u = temp.File($"u-{options.Length}.qcow2");
            await QemuImgOkAsync("create", "-q", "-f", "qcow2", "-o", options, q);
            var created = await UrlDiskOkAsync("create", "-f", "qcow2", "-o", options, u);
            Assert.StartsWith($"Formatting '{u}', fmt=qcow2 ", created.Stdout, StringComparison.Ordinal);
            await CheckCleanAsync(u);
            var qi = await InfoAsync(q);
            var ui = await InfoAsync(u);
            Assert.Equal(qi.GetProperty("virtual-size").GetInt64(), ui.GetProperty("virtual-size").GetInt64());
            Assert.Equal(qi.TryGetProperty("backing-filename", out var qb) ? qb.GetString() : null, ui.TryGetProperty("backing-filename", out var ub) ? ub.GetString() : null);
            Assert.Equal(qi.TryGetProperty("backing-filename-format", out var qf) ? qf.GetString() : null, ui.TryGetProperty("backing-filename-format", out var uf) ? uf.GetString() : null);
            await SameContentAsync(q, u);
        }

        // SIZE and -o size together: refused, as qemu-img refuses them.
        var q2 = await QemuImg.RunAsync("create", "-q", "-f", "qcow2", "-o", "size=4M", temp.File("qboth.qcow2"), "2M");
        var u2 = await UrlDiskCli.RunAsync("create", "-q", "-f", "qcow2", "-o", "size=4M", temp.File("both.qcow2"), "2M");
        Assert.NotEqual(0, q2.ExitCode);
        Assert.True(u2.ExitCode == 1, u2.ToString());
        Assert.Contains("size must be specified only once", u2.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(temp.File("both.qcow2")));
    }

    [Theory]
    [InlineData("off")]
    [InlineData("falloc")]
    [InlineData("full")]
    public async Task Raw_preallocation_allocates_as_qemu_img(string mode)
    {
        using var temp = new TempDir("urldisk-create-flags");
        string q = temp.File("q.raw");
        string u = temp.File("u.raw");
        var qr = await QemuImgOkAsync("create", "-f", "raw", "-o", $"preallocation={mode}", q, "4M");
        var ur = await UrlDiskOkAsync("create", "-f", "raw", "-o", $"preallocation={mode}", u, "4M");
        Assert.Equal(qr.Stdout.Replace(q, u, StringComparison.Ordinal), ur.Stdout);
        Assert.Equal(new FileInfo(q).Length, new FileInfo(u).Length);
        Assert.Equal(await AllocatedAsync(q), await AllocatedAsync(u));
        byte[] bytes = await File.ReadAllBytesAsync(u);
        Assert.True(bytes.AsSpan().IndexOfAnyExcept((byte)0) < 0);

        string quiet = temp.File("quiet.raw");
        var qq = await UrlDiskOkAsync("create", "-q", "-f", "raw", "-o", $"preallocation={mode}", quiet, "1M");
        Assert.Empty(qq.Stdout);
        Assert.Empty(qq.Stderr);
    }

    [Fact]
    public async Task Preallocation_urldisk_cannot_do_is_refused_naming_what_it_can()
    {
        using var temp = new TempDir("urldisk-create-flags");
        var qMeta = await QemuImg.RunAsync("create", "-f", "raw", "-o", "preallocation=metadata", temp.File("q.raw"), "1M");
        var uMeta = await UrlDiskCli.RunAsync("create", "-f", "raw", "-o", "preallocation=metadata", temp.File("u.raw"), "1M");
        Assert.NotEqual(0, qMeta.ExitCode);
        Assert.True(uMeta.ExitCode == 1, uMeta.ToString());
        Assert.Contains("off, falloc or full", uMeta.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(temp.File("u.raw")));

        var bogus = await UrlDiskCli.RunAsync("create", "-f", "raw", "-o", "preallocation=bogus", temp.File("b.raw"), "1M");
        Assert.True(bogus.ExitCode == 1, bogus.ToString());
        Assert.False(File.Exists(temp.File("b.raw")));
    }

    [Theory]
    [InlineData("qcow2", "help")]
    [InlineData("raw", "?")]
    public async Task O_help_needs_no_filename_and_lists_what_qemu_img_lists(string format, string ask)
    {
        // qemu-img lists a raw file's preallocation (a protocol option) only when given a file name; urldisk always does.
        using var temp = new TempDir("urldisk-create-flags");
        var q = await QemuImgOkAsync("create", "-f", format, "-o", ask, temp.File("never"));
        var u = await UrlDiskOkAsync("create", "-f", format, "-o", ask);
        string[] lines = u.Stdout.TrimEnd().Split('\n');
        Assert.Equal($"Supported {format} options:", lines[0]);
        Assert.False(File.Exists(temp.File("never")));
        foreach (string line in lines[1..])
        {
            Assert.Contains(line[..line.IndexOf(" - ", StringComparison.Ordinal)].TrimEnd() + " ", q.Stdout, StringComparison.Ordinal);
        }
    }
}
