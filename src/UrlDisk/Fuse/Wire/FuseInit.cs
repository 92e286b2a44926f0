using System.Buffers.Binary;

namespace UrlDisk.Fuse.Wire;

/// <summary>The FUSE_INIT capability bits this server may ask for.</summary>
[Flags]
internal enum FuseInitFlags : uint
{
    AsyncRead = 1 << 0,
    BigWrites = 1 << 5,
    AutoInvalData = 1 << 12,
    ParallelDirOps = 1 << 18,
    MaxPages = 1 << 22,
}

/// <summary>fuse_init_in: the kernel's protocol version and offer (the first 16 bytes are all this server needs).</summary>
internal readonly record struct FuseInitIn(uint Major, uint Minor, uint MaxReadahead, FuseInitFlags Flags)
{
    public const int MinimumSize = 16;

    public static bool TryRead(ReadOnlySpan<byte> body, out FuseInitIn init)
    {
        init = default;
        if (body.Length < MinimumSize)
        {
            return false;
        }

        init = new FuseInitIn(
            BinaryPrimitives.ReadUInt32LittleEndian(body),
            BinaryPrimitives.ReadUInt32LittleEndian(body[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(body[8..]),
            (FuseInitFlags)BinaryPrimitives.ReadUInt32LittleEndian(body[12..]));
        return true;
    }
}

/// <summary>fuse_init_out: 64 bytes from protocol 7.23 on (never longer than the kernel's, or the mount dies).</summary>
internal readonly record struct FuseInitOut(uint Major, uint Minor, uint MaxReadahead, FuseInitFlags Flags, ushort MaxBackground, ushort CongestionThreshold, uint MaxWrite, ushort MaxPages)
{
    public const int Size = 64;

    public bool TryWrite(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            return false;
        }

        destination[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Major);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Minor);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], MaxReadahead);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], (uint)Flags);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[16..], MaxBackground);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[18..], CongestionThreshold);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], MaxWrite);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[28..], MaxPages); // time_gran (24..28) stays 0: the default
        return true;
    }
}
