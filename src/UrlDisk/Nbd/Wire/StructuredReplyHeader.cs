using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>Structured reply chunk header: magic, u16 flags, u16 chunk type, u64 cookie, u32 payload length.</summary>
internal readonly record struct StructuredReplyHeader(NbdReplyFlags Flags, NbdReplyChunkType Type, ulong Cookie, uint Length)
{
    public const int Size = 20;

    public bool IsDone => (Flags & NbdReplyFlags.Done) != 0;

    public bool IsError => ((ushort)Type & 0x8000) != 0;

    public static bool TryRead(ReadOnlySpan<byte> source, out StructuredReplyHeader value)
    {
        value = default;
        if (source.Length < Size)
        {
            return false;
        }

        if (BinaryPrimitives.ReadUInt32BigEndian(source) != NbdMagic.StructuredReply)
        {
            throw new NbdProtocolException("structured reply chunk with bad magic");
        }

        value = new StructuredReplyHeader(
            (NbdReplyFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            (NbdReplyChunkType)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[16..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.StructuredReply);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Type);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Cookie);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], Length);
    }
}
