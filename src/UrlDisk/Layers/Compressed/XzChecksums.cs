namespace UrlDisk.Layers.Compressed;

/// <summary>The integrity checks xz uses: CRC-32 (IEEE, reflected) for headers and the index, CRC-64 (ECMA-182, reflected) for data.</summary>
internal static class XzChecksums
{
    private static readonly uint[] Crc32Table = MakeCrc32Table();
    private static readonly ulong[] Crc64Table = MakeCrc64Table();

    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = uint.MaxValue;
        foreach (byte b in data)
        {
            crc = Crc32Table[(byte)(crc ^ b)] ^ (crc >> 8);
        }

        return ~crc;
    }

    public static ulong Crc64(ReadOnlySpan<byte> data)
    {
        ulong crc = ulong.MaxValue;
        foreach (byte b in data)
        {
            crc = Crc64Table[(byte)(crc ^ b)] ^ (crc >> 8);
        }

        return ~crc;
    }

    private static uint[] MakeCrc32Table()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            t[i] = c;
        }

        return t;
    }

    private static ulong[] MakeCrc64Table()
    {
        var t = new ulong[256];
        for (ulong i = 0; i < 256; i++)
        {
            ulong c = i;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xC96C5795D7870F42UL ^ (c >> 1) : c >> 1;
            }

            t[i] = c;
        }

        return t;
    }
}
