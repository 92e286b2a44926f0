using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>Client option request: IHAVEOPT, u32 option, u32 data length; the data follows.</summary>
internal readonly record struct OptionRequestHeader(NbdOption Option, uint Length)
{
    public const int Size = 16;

    /// <summary>False when fewer than <see cref="Size"/> bytes are there; throws when the magic is wrong.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out OptionRequestHeader value)
    {
        value = default;
        if (source.Length < Size)
        {
            return false;
        }

        if (BinaryPrimitives.ReadUInt64BigEndian(source) != NbdMagic.IHaveOpt)
        {
            throw new NbdProtocolException("option request without IHAVEOPT magic");
        }

        value = new OptionRequestHeader((NbdOption)BinaryPrimitives.ReadUInt32BigEndian(source[8..]), BinaryPrimitives.ReadUInt32BigEndian(source[12..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.IHaveOpt);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], (uint)Option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], Length);
    }
}
