using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>
/// A transmission request header. Compact form (28 bytes): magic, u16 flags, u16 type, u64 cookie, u64 offset, u32 length.
/// Extended form (32 bytes, after NBD_OPT_EXTENDED_HEADERS): the same with a u64 length. WRITE data follows the header.
/// </summary>
internal readonly record struct NbdRequest(NbdCommandFlags Flags, NbdCommand Command, ulong Cookie, ulong Offset, ulong Length)
{
    public const int CompactSize = 28;
    public const int ExtendedSize = 32;

    public static int SizeOf(bool extended) => extended ? ExtendedSize : CompactSize;

    /// <summary>False when the header is not all there yet; throws when the magic is wrong (the stream is out of step).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, bool extended, out NbdRequest value)
    {
        value = default;
        if (source.Length < SizeOf(extended))
        {
            return false;
        }

        uint magic = BinaryPrimitives.ReadUInt32BigEndian(source);
        if (magic != (extended ? NbdMagic.ExtendedRequest : NbdMagic.Request))
        {
            throw new NbdProtocolException($"request with bad magic 0x{magic:x8}");
        }

        value = new NbdRequest(
            (NbdCommandFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            (NbdCommand)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[16..]),
            extended ? BinaryPrimitives.ReadUInt64BigEndian(source[24..]) : BinaryPrimitives.ReadUInt32BigEndian(source[24..]));
        return true;
    }

    public void Write(Span<byte> destination, bool extended)
    {
        if (!extended && Length > uint.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(extended), "a compact request carries a 32-bit length");
        }

        BinaryPrimitives.WriteUInt32BigEndian(destination, extended ? NbdMagic.ExtendedRequest : NbdMagic.Request);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Command);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Cookie);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], Offset);
        if (extended)
        {
            BinaryPrimitives.WriteUInt64BigEndian(destination[24..], Length);
        }
        else
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination[24..], (uint)Length);
        }
    }
}
