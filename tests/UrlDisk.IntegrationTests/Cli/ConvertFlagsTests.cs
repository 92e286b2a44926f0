using System.Text.Json;
using UrlDisk.IntegrationTests.Http;
using UrlDisk.IntegrationTests.Infrastructure;
using static UrlDisk.IntegrationTests.Cli.QemuImgParity;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>
/// convert's qemu-img flags (-B, several sources, --target-is-zero, -T, -W, --target-image-opts, -o help,
/// -o preallocation), each run through qemu-img and urldisk on the same inputs and judged by qemu-img.
/// </summary>
public sealed class ConvertFlagsTests
{
    private const int MiB = 1 << 20;

    /// <summary>8 MiB raw: random data in the first 3 MiB, zeros after.</summary>
    private static async Task<string> BaseAsync(TempDir temp)
    {
        string path = temp.File("base.raw");
        var data = new byte[8 * MiB];
        Random.Shared.NextBytes(data.AsSpan(0, 3 * MiB));
        ImageFactory.WriteSparse(path, data);
        await Task.CompletedTask;
        return path;
    }

    [Fact]
    public async Task B_writes_only_what_differs_from_the_backing_file()
    {
        using var temp = new TempDir("urldisk-convert-flags");
        string baseRaw = await BaseAsync(temp);
        string overlay = temp.File("ov.qcow2");
        await QemuImgOkAsync("create", "-q", "-f", "qcow2", "-F", "raw", "-b", baseRaw, overlay);
        await QemuIoAsync(overlay, "write -P 0x55 1M 64k", "write -z 0 64k", "write -P 0x66 5M 128k");

        string q = temp.File("q.qcow2");
        string u = temp.File("u.qcow2");
        await QemuImgOkAsync("convert", "-O", "qcow2", "-B", baseRaw, "-F", "raw", overlay, q);
        await UrlDiskOkAsync("convert", "-O", "qcow2", "-B", baseRaw, "-F", "raw", overlay, u);
        await SameContentAsync(overlay, u);
        await SameContentAsync(q, u);
        await CheckCleanAsync(u);
        var info = JsonDocument.Parse((await QemuImgOkAsync("info", "--output", "json", u)).Stdout).RootElement;
        Assert.Equal(baseRaw, info.GetProperty("backing-filename").GetString());
        Assert.Equal("raw", info.GetProperty("backing-filename-format").GetString());

        // Only the 64k + 128k written differ, plus the zeroed 64k (a zero cluster): qemu-img stores the same.
        long qAllocated = await AllocatedAsync(q);
        long uAllocated = await AllocatedAsync(u);
        Assert.True(uAllocated <= qAllocated + (256 << 10), $"urldisk {uAllocated} bytes, qemu-img {qAllocated}");
        Assert.True(uAllocated < 1 * MiB, $"{uAllocated} bytes allocated for 192 KiB that differ");

        // A source equal to the backing file: qemu-img copies all its data (it compares nothing); urldisk writes none.
        string same = temp.File("same.qcow2");
        await UrlDiskOkAsync("convert", "-O", "qcow2", "-B", baseRaw, "-F", "raw", baseRaw, same);
        await SameContentAsync(baseRaw, same);
        await CheckCleanAsync(same);
        Assert.True(await AllocatedAsync(same) < 1 * MiB);
    }

    [Fact]
    public async Task B_is_refused_where_qemu_img_refuses_it()
    {
        using var temp = new TempDir("urldisk-convert-flags");
        string baseRaw = await BaseAsync(temp);
        foreach (string[] args in new[]
        {
            new[] { "convert", "-O", "qcow2", "-B", baseRaw, baseRaw, temp.File("a.qcow2") }, // no -F
            ["convert", "-O", "raw", "-B", baseRaw, "-F", "raw", baseRaw, temp.File("b.raw")],
        })
        {
            var q = await QemuImg.RunAsync(args[1..]);
            var u = await UrlDiskCli.RunAsync(args);
            Assert.NotEqual(0, q.ExitCode);
            Assert.True(u.ExitCode == 1, u.ToString());
            Assert.Contains("-B", u.Stderr, StringComparison.Ordinal);
            Assert.False(File.Exists(args[^1]), "nothing is written after a refusal");
        }
    }

    [Fact]
    public async Task Several_sources_are_joined_as_qemu_img_joins_them()
    {
        using var temp = new TempDir("urldisk-convert-flags");

        // 1000 bytes (not whole sectors: qemu-img pads to 1024), then a qcow2 with data at 64k.
        string first = temp.File("first.raw");
        await File.WriteAllBytesAsync(first, ImageFactory.Random(1000, 11));
        string second = temp.File("second.qcow2");
        await QemuImgOkAsync("create", "-q", "-f", "qcow2", second, "1M");
        await QemuIoAsync(second, "write -P 7 64k 64k");
        string third = await BaseAsync(temp);

        foreach (string fmt in new[] { "raw", "qcow2" })
        {
            string q = temp.File($"q.{fmt}");
            string u = temp.File($"u.{fmt}");
            await QemuImgOkAsync("convert", "-O", fmt, first, second, third, q);
            await UrlDiskOkAsync("convert", "-O", fmt, first, second, third, u);
            await SameContentAsync(q, u);
            if (fmt == "raw")
            {
                Assert.Equal(new FileInfo(q).Length, new FileInfo(u).Length);
                await SameBytesAsync(q, u);
                Assert.True(await AllocatedAsync(u) <= await AllocatedAsync(q) + (64 << 10));
            }
            else
            {
                await CheckCleanAsync(u);
            }
        }
    }

    [Fact]
    public async Task Target_is_zero_needs_n_and_then_zeros_are_not_written()
    {
        using var temp = new TempDir("urldisk-convert-flags");
        string src = await BaseAsync(temp);
        var qRefused = await QemuImg.RunAsync("convert", "--target-is-zero", src, temp.File("x.raw"));
        var uRefused = await UrlDiskCli.RunAsync("convert", "--target-is-zero", src, temp.File("x.raw"));
        Assert.NotEqual(0, qRefused.ExitCode);
        Assert.True(uRefused.ExitCode == 1, uRefused.ToString());
        Assert.Contains("--target-is-zero requires use of -n", uRefused.Stderr, StringComparison.Ordinal);

        foreach (var (tool, path) in new[] { ("qemu-img", temp.File("q.raw")), ("urldisk", temp.File("u.raw")) })
        {
            using (var f = File.Create(path))
            {
                f.SetLength(8 * MiB); // a new sparse file: reads as zeros
            }

            string[] args = ["convert", "-n", "--target-is-zero", src, path];
            _ = tool == "qemu-img" ? await QemuImgOkAsync(args) : await UrlDiskOkAsync(args);
            await SameContentAsync(src, path);
        }

        Assert.True(await AllocatedAsync(temp.File("u.raw")) <= await AllocatedAsync(temp.File("q.raw")) + (64 << 10));
    }

    [Fact]
    public async Task T_takes_qemu_cache_modes_and_names_a_bad_one()
    {
        using var temp = new TempDir("urldisk-convert-flags");
        string src = await BaseAsync(temp);
        foreach (string mode in new[] { "none", "writeback", "writethrough", "directsync", "unsafe" })
        {
            string u = temp.File($"{mode}.raw");
            await UrlDiskOkAsync("convert", "-T", mode, src, u);
            await SameContentAsync(src, u);
        }

        var q = await QemuImg.RunAsync("convert", "-T", "bogus", src, temp.File("q.raw"));
        var r = await UrlDiskCli.RunAsync("convert", "-T", "bogus", src, temp.File("u.raw"));
        Assert.NotEqual(0, q.ExitCode);
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("Invalid source cache option: bogus", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("writeback", r.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(temp.File("u.raw")));
    }

    [Fact]
    public async Task Without_W_qcow2_clusters_are_stored_in_guest_order_and_with_W_the_copy_is_the_same()
    {
        using var temp = new TempDir("urldisk-convert-flags");
        string src = temp.File("src.raw");
        await File.WriteAllBytesAsync(src, ImageFactory.Random(48 * MiB, 5));
        string ordered = temp.File("ordered.qcow2");
        string any = temp.File("any.qcow2");
        await UrlDiskOkAsync("convert", "-O", "qcow2", "-m", "16", src, ordered);
        await UrlDiskOkAsync("convert", "-O", "qcow2", "-m", "16", "-W", src, any);
        foreach (string image in new[] { ordered, any })
        {
            await SameContentAsync(src, image);
            await CheckCleanAsync(image);
        }

        // qemu-img's layout: host offsets grow with guest offsets (one mapped run per contiguous stretch).
        var map = JsonDocument.Parse((await QemuImgOkAsync("map", "--output", "json", ordered)).Stdout).RootElement;
        long lastHost = -1;
        foreach (var e in map.EnumerateArray().Where(e => e.GetProperty("data").GetBoolean()))
        {
            long host = e.GetProperty("offset").GetInt64();
            Assert.True(host > lastHost, $"cluster at guest {e.GetProperty("start").GetInt64()} is stored at {host}, before {lastHost}");
            lastHost = host;
        }
    }

    [Fact]
    public async Task Target_image_opts_names_an_existing_target_and_needs_n()
    {
        using var temp = new TempDir("urldisk-convert-flags");
        string src = await BaseAsync(temp);
        string q = temp.File("q.qcow2");
        string u = temp.File("u.qcow2");
        await QemuImgOkAsync("create", "-q", "-f", "qcow2", q, "8M");
        await QemuImgOkAsync("create", "-q", "-f", "qcow2", u, "8M");
        await QemuImgOkAsync("convert", "-n", "--target-image-opts", src, $"driver=qcow2,file.filename={q}");
        await UrlDiskOkAsync("convert", "-n", "--target-image-opts", src, $"driver=qcow2,file.filename={u}");
        await SameContentAsync(src, u);
        await SameContentAsync(q, u);
        await CheckCleanAsync(u);

        string raw = temp.File("u.raw");
        using (var f = File.Create(raw))
        {
            f.SetLength(8 * MiB);
        }

        await UrlDiskOkAsync("convert", "-n", "--target-image-opts", src, $"driver=raw,file.driver=file,file.filename={raw}");
        await SameContentAsync(src, raw);

        var qNoN = await QemuImg.RunAsync("convert", "--target-image-opts", src, $"driver=raw,file.filename={temp.File("n.raw")}");
        var uNoN = await UrlDiskCli.RunAsync("convert", "--target-image-opts", src, $"driver=raw,file.filename={temp.File("n.raw")}");
        Assert.NotEqual(0, qNoN.ExitCode);
        Assert.True(uNoN.ExitCode == 1, uNoN.ToString());
        Assert.Contains("requires use of -n", uNoN.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("qcow2", "help")]
    [InlineData("raw", "?")]
    public async Task O_help_lists_the_options_in_qemu_img_layout(string format, string ask)
    {
        using var temp = new TempDir("urldisk-convert-flags");
        string src = await BaseAsync(temp);
        var q = await QemuImgOkAsync("convert", "-O", format, "-o", ask, src, temp.File("q"));
        var u = await UrlDiskOkAsync("convert", "-O", format, "-o", ask, src, temp.File("u"));
        Assert.False(File.Exists(temp.File("u")), "-o help converts nothing");
        string[] lines = u.Stdout.TrimEnd().Split('\n');
        Assert.Equal($"Supported {format} options:", lines[0]);
        Assert.True(lines.Length > 2, u.Stdout);
        foreach (string line in lines[1..])
        {
            // Each option urldisk lists is one qemu-img lists, with the same name and type.
            string nameAndType = line[..line.IndexOf(" - ", StringComparison.Ordinal)].Trim();
            Assert.Contains($"  {nameAndType} ", q.Stdout, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("off")]
    [InlineData("falloc")]
    [InlineData("full")]
    public async Task Raw_preallocation_allocates_as_qemu_img(string mode)
    {
        using var temp = new TempDir("urldisk-convert-flags");
        string src = await BaseAsync(temp);
        string q = temp.File("q.raw");
        string u = temp.File("u.raw");
        await QemuImgOkAsync("convert", "-O", "raw", "-o", $"preallocation={mode}", src, q);
        await UrlDiskOkAsync("convert", "-O", "raw", "-o", $"preallocation={mode}", src, u);
        await SameBytesAsync(q, u);
        long qAllocated = await AllocatedAsync(q);
        long uAllocated = await AllocatedAsync(u);
        Assert.True(Math.Abs(qAllocated - uAllocated) <= 64 << 10, $"{mode}: urldisk {uAllocated} bytes allocated, qemu-img {qAllocated}");
        Assert.True(mode == "off" ? uAllocated < 4 * MiB : uAllocated >= 8 * MiB, $"{mode}: {uAllocated}");
    }

    [Fact]
    public async Task Raw_preallocation_metadata_is_refused_as_by_qemu_img()
    {
        using var temp = new TempDir("urldisk-convert-flags");
        string src = await BaseAsync(temp);
        var q = await QemuImg.RunAsync("convert", "-O", "raw", "-o", "preallocation=metadata", src, temp.File("q.raw"));
        var u = await UrlDiskCli.RunAsync("convert", "-O", "raw", "-o", "preallocation=metadata", src, temp.File("u.raw"));
        Assert.NotEqual(0, q.ExitCode);
        Assert.True(u.ExitCode == 1, u.ToString());
        Assert.Contains("preallocation=metadata", u.Stderr, StringComparison.Ordinal);
        Assert.Contains("off, falloc or full", u.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(temp.File("u.raw")));
    }
}
