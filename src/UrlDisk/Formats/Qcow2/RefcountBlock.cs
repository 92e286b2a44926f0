using System.Buffers.Binary;

namespace UrlDisk.Formats.Qcow2;

/// <summary>Refcount entries of any width (1–64 bits) inside a refcount block; sub-byte entries are LSB-first.</summary>
internal static class RefcountBlock
{
    public static ulong Get(ReadOnlySpan<byte> block, int order, long index)
    {
        int bits = 1 << order;
        switch (bits)
        {
            case 64: return BinaryPrimitives.ReadUInt64BigEndian(block[(int)(index * 8)..]);
            case 32: return BinaryPrimitives.ReadUInt32BigEndian(block[(int)(index * 4)..]);
            case 16: return BinaryPrimitives.ReadUInt16BigEndian(block[(int)(index * 2)..]);
            case 8: return block[(int)index];
            default:
                long bit = index * bits;
                int shift = (int)(bit & 7);
                return (ulong)((block[(int)(bit >> 3)] >> shift) & ((1 << bits) - 1));
        }
    }

    public static void Set(Span<byte> block, int order, long index, ulong value)
    {
        int bits = 1 << order;
        switch (bits)
        {
            case 64: BinaryPrimitives.WriteUInt64BigEndian(block[(int)(index * 8)..], value); break;
            case 32: BinaryPrimitives.WriteUInt32BigEndian(block[(int)(index * 4)..], (uint)value); break;
            case 16: BinaryPrimitives.WriteUInt16BigEndian(block[(int)(index * 2)..], (ushort)value); break;
            case 8: block[(int)index] = (byte)value; break;
            default:
                long bit = index * bits;
                int shift = (int)(bit & 7);
                int mask = ((1 << bits) - 1) << shift;
                ref byte b = ref block[(int)(bit >> 3)];
                b = (byte)((b & ~mask) | (((int)value << shift) & mask));
                break;
        }
    }

    public static ulong MaxValue(int order) => order == 6 ? ulong.MaxValue : (1UL << (1 << order)) - 1;

    /// <summary>Byte range of the entry (for writing back only what changed).</summary>
    public static (int Start, int Length) ByteRange(int order, long index)
    {
        int bits = 1 << order;
        return bits >= 8 ? ((int)(index * (bits / 8)), bits / 8) : ((int)(index * bits / 8), 1);
    }
}
