using System.Buffers.Binary;
using System.Numerics;

namespace UrlDisk.Formats.Vhdx;

/// <summary>CRC-32C (Castagnoli) as VHDX uses it: initial and final xor 0xFFFFFFFF, over a structure whose checksum field reads as zero.</summary>
internal static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data, int checksumOffset)
    {
        uint crc = uint.MaxValue;
        for (int i = 0; i < data.Length; i++)
        {
            crc = BitOperations.Crc32C(crc, i >= checksumOffset && i < checksumOffset + 4 ? (byte)0 : data[i]);
        }

        return ~crc;
    }

    public static bool Matches(ReadOnlySpan<byte> data, int checksumOffset)
        => BinaryPrimitives.ReadUInt32LittleEndian(data[checksumOffset..]) == Compute(data, checksumOffset);
}
