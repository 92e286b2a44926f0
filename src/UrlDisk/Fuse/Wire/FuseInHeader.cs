using System.Buffers.Binary;

namespace UrlDisk.Fuse.Wire;

/// <summary>fuse_in_header (40 bytes): what every request starts with.</summary>
internal readonly record struct FuseInHeader(uint Length, FuseOpcode Opcode, ulong Unique, ulong NodeId, uint Uid, uint Gid, uint Pid, ushort ExtensionLength)
{
    public const int Size = 40;

    /// <summary>Reads the header; false when the request is shorter than a header or than its own length field.</summary>
    public static bool TryRead(ReadOnlySpan<byte> request, out FuseInHeader header)
    {
        header = default;
        if (request.Length < Size)
        {
            return false;
        }

        header = new FuseInHeader(
            BinaryPrimitives.ReadUInt32LittleEndian(request),
            (FuseOpcode)BinaryPrimitives.ReadUInt32LittleEndian(request[4..]),
            BinaryPrimitives.ReadUInt64LittleEndian(request[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(request[16..]),
            BinaryPrimitives.ReadUInt32LittleEndian(request[24..]),
            BinaryPrimitives.ReadUInt32LittleEndian(request[28..]),
            BinaryPrimitives.ReadUInt32LittleEndian(request[32..]),
            BinaryPrimitives.ReadUInt16LittleEndian(request[36..]));
        return header.Length >= Size && header.Length <= request.Length;
    }
}

/// <summary>fuse_out_header (16 bytes): what every reply starts with.</summary>
internal static class FuseOutHeader
{
    public const int Size = 16;

    /// <param name="length">The whole reply, header included.</param>
    /// <param name="errno">0, or a positive errno (sent negated).</param>
    public static bool TryWrite(Span<byte> destination, int length, int errno, ulong unique)
    {
        if (destination.Length < Size || length < Size || errno is < 0 or >= 1000)
        {
            return false;
        }

        BinaryPrimitives.WriteInt32LittleEndian(destination, length);
        BinaryPrimitives.WriteInt32LittleEndian(destination[4..], -errno);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], unique);
        return true;
    }
}
