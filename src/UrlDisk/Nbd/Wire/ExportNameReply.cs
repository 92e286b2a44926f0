using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>Answer to NBD_OPT_EXPORT_NAME: u64 size, u16 transmission flags, then 124 zero bytes unless NO_ZEROES was agreed.</summary>
internal readonly record struct ExportNameReply(ulong ExportSize, NbdTransmissionFlags Flags, bool NoZeroes)
{
    public const int ShortSize = 10;
    public const int PaddedSize = 134;

    public int EncodedLength => NoZeroes ? ShortSize : PaddedSize;

    public static bool TryRead(ReadOnlySpan<byte> source, bool noZeroes, out ExportNameReply value)
    {
        value = default;
        if (source.Length < (noZeroes ? ShortSize : PaddedSize))
        {
            return false;
        }

        value = new ExportNameReply(BinaryPrimitives.ReadUInt64BigEndian(source), (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(source[8..]), noZeroes);
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, ExportSize);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], (ushort)Flags);
        if (!NoZeroes)
        {
            destination[ShortSize..PaddedSize].Clear();
        }
    }
}
