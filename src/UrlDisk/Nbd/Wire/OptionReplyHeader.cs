using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>Server option reply: magic, u32 option, u32 reply type, u32 data length; the data follows.</summary>
internal readonly record struct OptionReplyHeader(NbdOption Option, NbdOptionReplyType Type, uint Length)
{
    public const int Size = 20;

    public bool IsError => ((uint)Type & 0x8000_0000) != 0;

    public static bool TryRead(ReadOnlySpan<byte> source, out OptionReplyHeader value)
    {
        value = default;
        if (source.Length < Size)
        {
            return false;
        }

        if (BinaryPrimitives.ReadUInt64BigEndian(source) != NbdMagic.OptionReply)
        {
            throw new NbdProtocolException("option reply without its magic");
        }

        value = new OptionReplyHeader(
            (NbdOption)BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
            (NbdOptionReplyType)BinaryPrimitives.ReadUInt32BigEndian(source[12..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[16..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.OptionReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], (uint)Option);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], (uint)Type);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], Length);
    }
}
