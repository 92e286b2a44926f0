using System.Buffers.Binary;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary>
/// Corrupt refcounts make metadata clusters look free. Every cluster the writer allocates is checked against
/// the image's metadata first (QEMU's overlap checks): a hit marks the image corrupt, refuses the write and
/// leaves every metadata structure as it was.
/// </summary>
public class Qcow2OverlapCheckTests
{
    /// <summary>How the refcounts are broken, the image's options, and the structure the first allocation would hit.</summary>
    public static TheoryData<string, string, string> Breakages => new()
    {
        { "zeroed refcount block", "", "the refcount table" },
        { "zeroed refcount block", "cluster_size=4096,refcount_bits=2", "the refcount table" },
        { "zeroed refcount block", "compat=0.10", "the refcount table" },
        { "zeroed refcount table entry", "", "the header" },
        { "refcount 0 for the refcount block", "", "a refcount block" },
        { "refcount 0 for the L1 table", "", "the active L1 table" },
        { "refcount 0 for an L2 table", "", "an active L2 table" },
        { "refcount 0 for the snapshot table", "", "the snapshot table" },
        { "refcount 0 for a snapshot's L1 table", "", "an inactive L1 table" },
    };

    [Theory]
    [MemberData(nameof(Breakages))]
    public async Task Allocating_over_metadata_marks_the_image_corrupt_and_loses_nothing(string breakage, string options, string hit)
    {
        using var q = new QemuTools();
        string[] create = options.Length == 0 ? ["create", "-f", "qcow2", "img.qcow2", "8M"] : ["create", "-f", "qcow2", "-o", options, "img.qcow2", "8M"];
        q.Img(create);
        q.Io("-c", "write -P 0x5a 0 192k", "-c", "write -P 0x6b 3M 64k", "img.qcow2");
        q.Img("snapshot", "-c", "snap", "img.qcow2");
        q.Io("-c", "write -P 0x7c 64k 64k", "img.qcow2");
        var expected = q.QemuRaw("img.qcow2");
        var bytes = File.ReadAllBytes(q.PathOf("img.qcow2"));
        Assert.True(Qcow2HeaderCluster.TryRead(bytes, out var hc, out _));
        var h = hc.Header;
        int cs = (int)h.ClusterSize;
        long reftable = (long)h.RefcountTableOffset;
        long block0 = (long)(BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan((int)reftable)) & ~511UL);
        Assert.True(SnapshotEntry.TryRead(bytes.AsSpan((int)h.SnapshotsOffset), out var snapshot, out _));
        void ZeroRefcount(long offset) => BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan((int)block0 + (int)(offset / cs * 2)), 0);
        switch (breakage)
        {
            case "zeroed refcount block":
                bytes.AsSpan((int)block0, cs).Clear();
                break;
            case "zeroed refcount table entry":
                bytes.AsSpan((int)reftable, 8).Clear();
                break;
            case "refcount 0 for the refcount block":
                ZeroRefcount(block0);
                break;
            case "refcount 0 for the L1 table":
                ZeroRefcount((long)h.L1TableOffset);
                break;
            case "refcount 0 for an L2 table":
                ZeroRefcount((long)(BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan((int)h.L1TableOffset)) & Qcow2Entries.OffsetMask));
                break;
            case "refcount 0 for the snapshot table":
                ZeroRefcount((long)h.SnapshotsOffset);
                break;
            default:
                ZeroRefcount(snapshot.L1Offset);
                break;
        }

        await File.WriteAllBytesAsync(q.PathOf("img.qcow2"), bytes);
        var before = File.ReadAllBytes(q.PathOf("img.qcow2"));
        await using (var image = await ImageOpener.OpenAsync(q.PathOf("img.qcow2"), null, new OpenContext { Writable = true }))
        {
            var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await image.WriteAsync(5 << 20, new byte[4096]));
            Assert.Contains("corrupt", e.Message, StringComparison.Ordinal);
            Assert.Contains("overlap " + hit, e.Message, StringComparison.Ordinal);

            // Refused from now on, whatever the write, with the same clear error.
            var again = await Assert.ThrowsAsync<ImageFormatException>(async () => await image.WriteAsync(0, new byte[512]));
            Assert.Contains("marked corrupt", again.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<ImageFormatException>(async () => await image.WriteZeroesAsync(0, cs));
            QemuTools.AssertSameBytes(expected, await QemuTools.ReadAllAsync(image));
        }

        var after = File.ReadAllBytes(q.PathOf("img.qcow2"));
        // Nothing that was there is lost: every byte of the old file is unchanged (v3: but the corrupt bit).
        bool v3 = h.Version == 3;
        if (v3)
        {
            Assert.Equal(h.IncompatibleFeatures | Qcow2Features.Corrupt, BinaryPrimitives.ReadUInt64BigEndian(after.AsSpan(72)));
            BinaryPrimitives.WriteUInt64BigEndian(after.AsSpan(72), h.IncompatibleFeatures);
        }

        Assert.True(after.Length >= before.Length);
        foreach (var (name, offset, length) in new[] { ("header", 0L, cs), ("refcount table", reftable, (int)h.RefcountTableClusters * cs), ("L1 table", (long)h.L1TableOffset, (int)h.L1Size * 8), ("snapshot table", (long)h.SnapshotsOffset, 64) })
        {
            Assert.True(before.AsSpan((int)offset, length).SequenceEqual(after.AsSpan((int)offset, length)), $"{name} changed");
        }

        Assert.True(before.AsSpan().SequenceEqual(after.AsSpan(0, before.Length)), $"first changed byte at {before.AsSpan().CommonPrefixLength(after)}");
        if (v3)
        {
            Assert.Contains("corrupt: true", q.Img("info", "img.qcow2"), StringComparison.Ordinal);
            await Assert.ThrowsAsync<ImageFormatException>(async () => await ImageOpener.OpenAsync(q.PathOf("img.qcow2"), null, new OpenContext { Writable = true }));
        }

        // Still readable as it was (qemu agrees), and repairable.
        QemuTools.AssertSameBytes(expected, q.QemuRaw("img.qcow2"));
    }
}
