using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>Simple reply: magic, u32 error, u64 cookie; a successful READ's data follows.</summary>
internal readonly record struct SimpleReplyHeader(NbdError Error, ulong Cookie)
{
    public const int Size = 16;

    public static bool TryRead(ReadOnlySpan<byte> source, out SimpleReplyHeader value)
    {
        value = default;
        if (source.Length < Size)
        {
            return false;
        }

        if (BinaryPrimitives.ReadUInt32BigEndian(source) != NbdMagic.SimpleReply)
        {
            throw new NbdProtocolException("simple reply with bad magic");
        }

        value = new SimpleReplyHeader((NbdError)BinaryPrimitives.ReadUInt32BigEndian(source[4..]), BinaryPrimitives.ReadUInt64BigEndian(source[8..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.SimpleReply);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], (uint)Error);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Cookie);
    }
}
