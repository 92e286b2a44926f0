using System.Security.Cryptography;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>
/// <c>urldisk snapshot</c> against qemu-img on the same images: the list qemu-img prints, snapshots qemu-img reads
/// back unchanged after UrlDisk's writer wrote the image, and qemu-img check clean after every step.
/// </summary>
public sealed class SnapshotTests(NginxFixture fixture) : IClassFixture<NginxFixture>
{
    private const int MiB = 1 << 20;

    [Fact]
    public async Task List_is_qemu_imgs_table_for_snapshots_qemu_made_locally_and_over_http()
    {
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "qcow2", "a.qcow2", "4M");
        q.Io("-c", "write -P 0x11 0 1M", "a.qcow2");
        q.Img("snapshot", "-c", "first", "a.qcow2");
        q.Io("-c", "write -P 0x22 0 64k", "a.qcow2");
        q.Img("snapshot", "-c", "a name longer than the column", "a.qcow2");
        q.Img("snapshot", "-c", "12345678901234567", "a.qcow2");
        q.Img("snapshot", "-c", "été", "a.qcow2");
        string expected = q.Img("snapshot", "-l", "a.qcow2");
        Assert.StartsWith("Snapshot list:\nID        TAG", expected, StringComparison.Ordinal);

        var local = await UrlDiskCli.RunAsync("snapshot", "-l", q.PathOf("a.qcow2"));
        Assert.True(local.ExitCode == 0, local.ToString());
        Assert.Equal(expected, local.Stdout);

        string url = fixture.Server.HttpUrl(fixture.Server.Put($"snapshot/list-{Guid.NewGuid():N}.qcow2", File.ReadAllBytes(q.PathOf("a.qcow2"))));
        var remote = await UrlDiskCli.RunAsync("snapshot", "-l", url);
        Assert.True(remote.ExitCode == 0, remote.ToString());
        Assert.Equal(expected, remote.Stdout);

        // No flag lists too; an image without snapshots prints nothing, as qemu-img.
        Assert.Equal(expected, (await UrlDiskCli.RunAsync("snapshot", q.PathOf("a.qcow2"))).Stdout);
        q.Img("create", "-q", "-f", "qcow2", "empty.qcow2", "1M");
        var empty = await UrlDiskCli.RunAsync("snapshot", "-l", q.PathOf("empty.qcow2"));
        Assert.Equal(0, empty.ExitCode);
        Assert.Equal(q.Img("snapshot", "-l", "empty.qcow2"), empty.Stdout);
    }

    [Theory]
    [InlineData("compat=1.1")]
    [InlineData("compat=0.10")]
    [InlineData("extended_l2=on,cluster_size=128k")]
    public async Task A_snapshot_keeps_its_data_while_urldisk_writes_the_image(string createOptions)
    {
        using var q = new QemuTools();
        string image = q.PathOf("vm.qcow2");
        q.Img("create", "-q", "-f", "qcow2", "-o", createOptions, "vm.qcow2", "8M");
        q.Io("-c", "write -P 0x11 0 2M", "-c", "write -c -P 0x33 4M 128k", "-c", "write -P 0x44 6M 64k", "vm.qcow2");
        var before = q.QemuRaw("vm.qcow2");

        var create = await UrlDiskCli.RunAsync("snapshot", "-c", "before", image);
        Assert.True(create.ExitCode == 0, create.ToString());
        AssertCheckClean(q, "vm.qcow2");
        Assert.Equal(q.Img("snapshot", "-l", "vm.qcow2"), (await UrlDiskCli.RunAsync("snapshot", "-l", image)).Stdout);

        // UrlDisk's own writer, on clusters the snapshot shares: partial clusters, a run across clusters,
        // zeroes over a compressed cluster and a discard.
        var after = (byte[])before.Clone();
        await using (var device = await ImageOpener.OpenAsync(image, null, new OpenContext { Writable = true }))
        {
            async Task WriteAsync(long offset, int length, byte value)
            {
                var data = new byte[length];
                Array.Fill(data, value);
                await device.WriteAsync(offset, data);
                data.CopyTo(after, offset);
            }

            await WriteAsync(4096, 4096, 0xA1);
            await WriteAsync(MiB - 512, MiB + 1024, 0xA2);
            await device.WriteZeroesAsync(4 * MiB, 128 * 1024);
            Array.Clear(after, 4 * MiB, 128 * 1024);
            await WriteAsync((6 * MiB) + 100, 10, 0xA3);
            await device.TrimAsync(0, 64 * 1024); // a discard may leave data or zeros: take what the image now says
            await device.ReadAsync(0, after.AsMemory(0, 64 * 1024));
            await device.FlushAsync();
        }

        AssertCheckClean(q, "vm.qcow2");
        Assert.Equal(0xA3, after[(6 * MiB) + 100]);
        QemuTools.AssertSameBytes(after, q.QemuRaw("vm.qcow2"));
        q.Img("convert", "-l", "snapshot.name=before", "-O", "raw", "vm.qcow2", "before.raw");
        QemuTools.AssertSameBytes(before, File.ReadAllBytes(q.PathOf("before.raw")));

        // Apply goes back to it; delete frees it and leaves a clean image qemu-img can still write.
        var apply = await UrlDiskCli.RunAsync("snapshot", "-a", "before", image);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        AssertCheckClean(q, "vm.qcow2");
        QemuTools.AssertSameBytes(before, q.QemuRaw("vm.qcow2"));
        var delete = await UrlDiskCli.RunAsync("snapshot", "-d", "before", image);
        Assert.True(delete.ExitCode == 0, delete.ToString());
        AssertCheckClean(q, "vm.qcow2");
        Assert.Equal("", q.Img("snapshot", "-l", "vm.qcow2"));
        q.Io("-c", "write -P 0x55 0 1M", "vm.qcow2");
        AssertCheckClean(q, "vm.qcow2");
    }

    [Fact]
    public async Task Snapshots_qemu_made_are_applied_and_deleted_and_qemu_reads_urldisks()
    {
        using var q = new QemuTools();
        string image = q.PathOf("vm.qcow2");
        q.Img("create", "-q", "-f", "qcow2", "vm.qcow2", "4M");
        q.Io("-c", "write -P 0x11 0 1M", "vm.qcow2");
        q.Img("snapshot", "-c", "qemu-made", "vm.qcow2");
        var qemuMade = q.QemuRaw("vm.qcow2");
        q.Io("-c", "write -P 0x22 512k 1M", "vm.qcow2");
        Assert.Equal(0, (await UrlDiskCli.RunAsync("snapshot", "-c", "urldisk-made", image)).ExitCode);
        var urldiskMade = q.QemuRaw("vm.qcow2");
        q.Io("-c", "write -P 0x33 0 4M", "vm.qcow2");

        // qemu-img applies UrlDisk's snapshot; UrlDisk applies qemu's (by ID, as qemu-img -a allows).
        q.Img("snapshot", "-a", "urldisk-made", "vm.qcow2");
        QemuTools.AssertSameBytes(urldiskMade, q.QemuRaw("vm.qcow2"));
        Assert.Equal(0, (await UrlDiskCli.RunAsync("snapshot", "-a", "1", image)).ExitCode);
        QemuTools.AssertSameBytes(qemuMade, q.QemuRaw("vm.qcow2"));
        AssertCheckClean(q, "vm.qcow2");
        Assert.Equal(0, (await UrlDiskCli.RunAsync("snapshot", "-d", "qemu-made", image)).ExitCode);
        q.Img("snapshot", "-d", "urldisk-made", "vm.qcow2");
        AssertCheckClean(q, "vm.qcow2");
        Assert.Equal("", q.Img("snapshot", "-l", "vm.qcow2"));
    }

    [Fact]
    public async Task Bad_requests_are_one_line_exit_1_and_change_nothing()
    {
        using var q = new QemuTools();
        q.Img("create", "-q", "-f", "qcow2", "vm.qcow2", "1M");
        q.Img("create", "-q", "-f", "raw", "disk.raw", "1M");
        string image = q.PathOf("vm.qcow2");
        string url = fixture.Server.HttpUrl(fixture.Server.Put($"snapshot/remote-{Guid.NewGuid():N}.qcow2", File.ReadAllBytes(image)));
        var hash = SHA256.HashData(File.ReadAllBytes(image));
        foreach (var (args, message) in new (string[], string)[]
        {
            (["snapshot", "-d", "missing", image], "Could not delete snapshot 'missing': snapshot not found"),
            (["snapshot", "-a", "missing", image], "Could not apply snapshot 'missing': snapshot not found"),
            (["snapshot", "-l", "-c", "x", image], "Cannot mix '-l', '-a', '-c', '-d'"),
            (["snapshot", "-c", "x", url], "is not a local file"),
            (["snapshot", "-c", "x", q.PathOf("disk.raw")], "does not support internal snapshots"),
        })
        {
            var r = await UrlDiskCli.RunAsync(args);
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.Contains(message, r.Stderr, StringComparison.Ordinal);
            Assert.Single(r.Stderr.Trim().Split('\n'));
        }

        Assert.Equal(hash, SHA256.HashData(File.ReadAllBytes(image)));
        Assert.Equal("", q.Img("snapshot", "-l", "disk.raw"));
    }

    private static void AssertCheckClean(QemuTools q, string image)
    {
        var (exit, stdout, stderr) = q.RunAll("qemu-img", "check", image);
        Assert.True(exit == 0, $"qemu-img check {image} exited {exit}: {stdout}{stderr}");
        Assert.Contains("No errors were found on the image.", stdout, StringComparison.Ordinal);
    }
}
