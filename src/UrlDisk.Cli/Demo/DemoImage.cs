using System.Buffers.Binary;

namespace UrlDisk.Cli.Demo;

/// <summary>Builds a demo disk: an MBR partition table, data regions and long zero runs (so sparse output shows).</summary>
internal static class DemoImage
{
    public static void Write(string path, long size)
    {
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        f.SetLength(size);
        var rng = new Random(20261125);
        var sector = new byte[512];

        // One Linux partition from 1 MiB to the end, and the boot signature.
        sector[446 + 4] = 0x83;
        BinaryPrimitives.WriteUInt32LittleEndian(sector.AsSpan(446 + 8), 2048);
        BinaryPrimitives.WriteUInt32LittleEndian(sector.AsSpan(446 + 12), (uint)(size / 512 - 2048));
        sector[510] = 0x55;
        sector[511] = 0xAA;
        f.Write(sector);

        // Data in every other 4 MiB stripe, zeros between.
        var chunk = new byte[1 << 20];
        for (long offset = 1 << 20; offset < size; offset += 8 << 20)
        {
            f.Position = offset;
            for (int i = 0; i < 4 && f.Position < size; i++)
            {
                rng.NextBytes(chunk);
                f.Write(chunk, 0, (int)Math.Min(chunk.Length, size - f.Position));
            }
        }
    }
}
