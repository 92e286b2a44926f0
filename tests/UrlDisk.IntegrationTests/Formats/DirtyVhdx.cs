using System.Buffers.Binary;
using UrlDisk.Formats.Vhdx;
using UrlDisk.IntegrationTests.Qcow2;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Formats;

/// <summary>
/// A dirty VHDX: a qemu-img image given a log entry by hand (MS-VHDX §2.3: a data descriptor with its data sector
/// and a zero descriptor) and headers naming the log.
/// </summary>
internal static class DirtyVhdx
{
    /// <summary>Writes dirty.vhdx in <paramref name="q"/>'s directory; returns the guest bytes before the log and the file's bytes.</summary>
    public static async Task<(byte[] Expected, byte[] File)> MakeAsync(QemuTools q)
    {
        q.Img("create", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", "dirty.vhdx", "4M");
        q.Io("-c", "write -P 0x31 0 1M", "dirty.vhdx");
        var expected = q.QemuRaw("dirty.vhdx");
        long host;
        VhdxHeader header;
        await using (var clean = (VhdxImage)await ImageOpener.OpenAsync(q.PathOf("dirty.vhdx")))
        {
            host = (await clean.GetExtentsAsync(0, 4096))[0].HostOffset!.Value;
            header = clean.Header;
        }

        var bytes = File.ReadAllBytes(q.PathOf("dirty.vhdx"));
        var logGuid = Guid.NewGuid();
        const ulong sequence = 10;
        var entry = bytes.AsSpan((int)header.LogOffset, 8192);
        entry.Clear();
        "loge"u8.CopyTo(entry);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[8..], 8192);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[12..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[16..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[24..], 2);
        logGuid.TryWriteBytes(entry.Slice(32, 16));
        BinaryPrimitives.WriteUInt64LittleEndian(entry[48..], (ulong)bytes.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[56..], (ulong)bytes.Length);

        var desc = entry.Slice(64, 32);
        "desc"u8.CopyTo(desc);
        desc.Slice(4, 4).Fill(0xAB);
        desc.Slice(8, 8).Fill(0xAB);
        BinaryPrimitives.WriteUInt64LittleEndian(desc[16..], (ulong)(host + 4096));
        BinaryPrimitives.WriteUInt64LittleEndian(desc[24..], sequence);
        var zero = entry.Slice(96, 32);
        "zero"u8.CopyTo(zero);
        BinaryPrimitives.WriteUInt64LittleEndian(zero[8..], 8192);
        BinaryPrimitives.WriteUInt64LittleEndian(zero[16..], (ulong)(host + 16384));
        BinaryPrimitives.WriteUInt64LittleEndian(zero[24..], sequence);
        var data = entry.Slice(4096, 4096);
        "data"u8.CopyTo(data);
        data.Slice(8, 4084).Fill(0xAB);
        BinaryPrimitives.WriteUInt32LittleEndian(data[^4..], (uint)sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[4..], Crc32C.Compute(entry, 4));

        foreach (int at in new[] { 64 * 1024, 128 * 1024 })
        {
            var h = bytes.AsSpan(at, 4096);
            logGuid.TryWriteBytes(h.Slice(48, 16));
            BinaryPrimitives.WriteUInt32LittleEndian(h[4..], Crc32C.Compute(h, 4));
        }

        File.WriteAllBytes(q.PathOf("dirty.vhdx"), bytes);
        return (expected, bytes);
    }
}
