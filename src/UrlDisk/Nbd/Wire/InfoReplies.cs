using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>NBD_REP_INFO data for NBD_INFO_EXPORT: u16 type 0, u64 size, u16 transmission flags.</summary>
internal readonly record struct InfoExport(ulong ExportSize, NbdTransmissionFlags Flags)
{
    public const int Size = 12;

    public static bool TryRead(ReadOnlySpan<byte> source, out InfoExport value)
    {
        value = default;
        if (source.Length != Size || BinaryPrimitives.ReadUInt16BigEndian(source) != (ushort)NbdInfoType.Export)
        {
            return false;
        }

        value = new InfoExport(BinaryPrimitives.ReadUInt64BigEndian(source[2..]), (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(source[10..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)NbdInfoType.Export);
        BinaryPrimitives.WriteUInt64BigEndian(destination[2..], ExportSize);
        BinaryPrimitives.WriteUInt16BigEndian(destination[10..], (ushort)Flags);
    }
}

/// <summary>NBD_REP_INFO data for NBD_INFO_BLOCK_SIZE: u16 type 3, u32 minimum, u32 preferred, u32 maximum payload.</summary>
internal readonly record struct InfoBlockSize(uint Minimum, uint Preferred, uint Maximum)
{
    public const int Size = 14;

    public static bool TryRead(ReadOnlySpan<byte> source, out InfoBlockSize value)
    {
        value = default;
        if (source.Length != Size || BinaryPrimitives.ReadUInt16BigEndian(source) != (ushort)NbdInfoType.BlockSize)
        {
            return false;
        }

        value = new InfoBlockSize(BinaryPrimitives.ReadUInt32BigEndian(source[2..]), BinaryPrimitives.ReadUInt32BigEndian(source[6..]), BinaryPrimitives.ReadUInt32BigEndian(source[10..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)NbdInfoType.BlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(destination[2..], Minimum);
        BinaryPrimitives.WriteUInt32BigEndian(destination[6..], Preferred);
        BinaryPrimitives.WriteUInt32BigEndian(destination[10..], Maximum);
    }
}

/// <summary>NBD_REP_INFO data for NBD_INFO_NAME or NBD_INFO_DESCRIPTION: u16 type, then the string to the end.</summary>
internal readonly record struct InfoText(NbdInfoType Type, string Text)
{
    public int EncodedLength => 2 + NbdStrings.ByteCount(Text);

    public static bool TryRead(ReadOnlySpan<byte> source, out InfoText value)
    {
        value = default;
        if (source.Length < 2)
        {
            return false;
        }

        var type = (NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(source);
        if (type is not (NbdInfoType.Name or NbdInfoType.Description) || !NbdStrings.TryDecode(source[2..], out string text))
        {
            return false;
        }

        value = new InfoText(type, text);
        return true;
    }

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)Type);
        return 2 + NbdStrings.Encode(Text, destination[2..]);
    }
}
