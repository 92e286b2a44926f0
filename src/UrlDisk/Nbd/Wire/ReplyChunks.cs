using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>Start of an NBD_REPLY_TYPE_OFFSET_DATA payload: u64 offset; the data follows.</summary>
internal readonly record struct OffsetDataChunk(ulong Offset)
{
    public const int Size = 8;

    public static bool TryRead(ReadOnlySpan<byte> source, out OffsetDataChunk value)
    {
        value = default;
        if (source.Length < Size)
        {
            return false;
        }

        value = new OffsetDataChunk(BinaryPrimitives.ReadUInt64BigEndian(source));
        return true;
    }

    public void Write(Span<byte> destination) => BinaryPrimitives.WriteUInt64BigEndian(destination, Offset);
}

/// <summary>NBD_REPLY_TYPE_OFFSET_HOLE payload: u64 offset, u32 size (non-zero); the range reads as zeros.</summary>
internal readonly record struct OffsetHoleChunk(ulong Offset, uint HoleSize)
{
    public const int Size = 12;

    public static bool TryRead(ReadOnlySpan<byte> source, out OffsetHoleChunk value)
    {
        value = default;
        if (source.Length < Size)
        {
            return false;
        }

        value = new OffsetHoleChunk(BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt32BigEndian(source[8..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, Offset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], HoleSize);
    }
}

/// <summary>One descriptor of an NBD_REPLY_TYPE_BLOCK_STATUS payload (after its u32 context id): u32 length, u32 status flags.</summary>
internal readonly record struct BlockStatusDescriptor(uint Length, NbdAllocationState State)
{
    public const int Size = 8;

    /// <summary>Bytes before the descriptors: the u32 metadata context id.</summary>
    public const int ContextIdSize = 4;

    public static bool TryRead(ReadOnlySpan<byte> source, out BlockStatusDescriptor value)
    {
        value = default;
        if (source.Length < Size)
        {
            return false;
        }

        value = new BlockStatusDescriptor(BinaryPrimitives.ReadUInt32BigEndian(source), (NbdAllocationState)BinaryPrimitives.ReadUInt32BigEndian(source[4..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, Length);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], (uint)State);
    }
}

/// <summary>NBD_REPLY_TYPE_ERROR payload: u32 error, u16 message length, message.</summary>
internal readonly record struct ErrorChunk(NbdError Error, string Message)
{
    public int EncodedLength => 6 + NbdStrings.ByteCount(Message);

    public static bool TryRead(ReadOnlySpan<byte> source, out ErrorChunk value)
    {
        value = default;
        if (source.Length < 6)
        {
            return false;
        }

        int n = BinaryPrimitives.ReadUInt16BigEndian(source[4..]);
        if (n > source.Length - 6 || !NbdStrings.TryDecode(source.Slice(6, n), out string message))
        {
            return false;
        }

        value = new ErrorChunk((NbdError)BinaryPrimitives.ReadUInt32BigEndian(source), message);
        return true;
    }

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)Error);
        int n = NbdStrings.Encode(Message, destination[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)n);
        return 6 + n;
    }
}
