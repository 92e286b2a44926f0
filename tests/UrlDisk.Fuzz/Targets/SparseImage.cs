using System.Buffers.Binary;

namespace UrlDisk.Fuzz.Targets;

/// <summary>
/// A compact encoding of a mostly empty image file, so formats whose structures sit megabytes apart (VHDX puts its
/// BAT at 2 MiB) fit in a fuzz input: <c>u32 file size</c>, then records <c>u32 offset, u16 length, bytes</c>
/// (little-endian). Everything not written reads as zeros; the size is capped.
/// </summary>
internal static class SparseImage
{
    public const int MaxSize = 16 << 20;

    public static byte[] Decode(ReadOnlySpan<byte> input)
    {
        if (input.Length < 4)
        {
            return [];
        }

        int size = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(input), MaxSize);
        var file = new byte[size];
        int pos = 4;
        while (pos + 6 <= input.Length)
        {
            long offset = BinaryPrimitives.ReadUInt32LittleEndian(input[pos..]);
            int length = BinaryPrimitives.ReadUInt16LittleEndian(input[(pos + 4)..]);
            pos += 6;
            length = Math.Min(length, input.Length - pos);
            if (offset < size)
            {
                int n = (int)Math.Min(length, size - offset);
                input.Slice(pos, n).CopyTo(file.AsSpan((int)offset));
            }

            pos += length;
        }

        return file;
    }
}
