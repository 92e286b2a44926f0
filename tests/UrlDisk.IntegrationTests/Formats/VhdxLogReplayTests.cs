using UrlDisk.Formats.Vhdx;
using UrlDisk.IntegrationTests.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Formats;

/// <summary>
/// A dirty VHDX: a qemu-img image given a log entry by hand (MS-VHDX §2.3: a data descriptor with its data sector
/// and a zero descriptor) and headers naming the log. qemu-img refuses to open it read-only; UrlDisk replays the
/// log in memory and leaves the file as it was.
/// </summary>
public sealed class VhdxLogReplayTests
{
    [Fact]
    public async Task Dirty_log_is_replayed_in_memory_and_the_file_is_not_written()
    {
        using var q = new QemuTools();
        var (expected, bytes) = await DirtyVhdx.MakeAsync(q);
        var (exit, _, stderr) = q.RunAll("qemu-img", "info", "dirty.vhdx");
        Assert.NotEqual(0, exit);
        Assert.Contains("log that needs to be replayed", stderr, StringComparison.Ordinal);

        expected.AsSpan(4096, 4096).Fill(0xAB);
        expected.AsSpan(16384, 8192).Clear();
        await using (var image = (VhdxImage)await ImageOpener.OpenAsync(q.PathOf("dirty.vhdx")))
        {
            Assert.True(image.LogReplayed);
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image, 100_000));
        }

        Assert.Equal(bytes, File.ReadAllBytes(q.PathOf("dirty.vhdx")));
    }
}
