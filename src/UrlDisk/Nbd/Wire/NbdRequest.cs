using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>
/// A transmission request header (28 bytes): magic, u16 flags, u16 type, u64 cookie, u64 offset, u32 length. WRITE data
/// follows the header. (The extended form of NBD_OPT_EXTENDED_HEADERS is never negotiated, so it has no codec.)
/// </summary>
internal readonly record struct NbdRequest(NbdCommandFlags Flags, NbdCommand Command, ulong Cookie, ulong Offset, uint Length)
{
    public const int CompactSize = 28;

    /// <summary>False when the header is not all there yet; throws when the magic is wrong (the stream is out of step).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out NbdRequest value)
    {
        value = default;
        if (source.Length < CompactSize)
        {
            return false;
        }

        uint magic = BinaryPrimitives.ReadUInt32BigEndian(source);
        if (magic != NbdMagic.Request)
        {
            throw new NbdProtocolException($"request with bad magic 0x{magic:x8}");
        }

        value = new NbdRequest(
            (NbdCommandFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            (NbdCommand)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[16..]),
            BinaryPrimitives.ReadUInt32BigEndian(source[24..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.Request);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Command);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Cookie);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], Offset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], Length);
    }
}
