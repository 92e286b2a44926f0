using System.Buffers.Binary;

namespace UrlDisk.Fuse.Wire;

/// <summary>fuse_read_in and fuse_write_in (40 bytes each, same leading fields): a range of the open file.</summary>
internal readonly record struct FuseIoIn(ulong Handle, long Offset, uint Size)
{
    public const int Size40 = 40;

    public static bool TryRead(ReadOnlySpan<byte> body, out FuseIoIn io)
    {
        io = default;
        if (body.Length < Size40)
        {
            return false;
        }

        io = new FuseIoIn(
            BinaryPrimitives.ReadUInt64LittleEndian(body),
            BinaryPrimitives.ReadInt64LittleEndian(body[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(body[16..]));
        return io.Offset >= 0;
    }
}

/// <summary>fuse_open_in (8 bytes): the open(2) flags.</summary>
internal readonly record struct FuseOpenIn(int Flags)
{
    public const int Size = 8;
    private const int AccessModeMask = 3; // O_ACCMODE; O_RDONLY is 0

    public bool WantsWrite => (Flags & AccessModeMask) != 0;

    public static bool TryRead(ReadOnlySpan<byte> body, out FuseOpenIn open)
    {
        open = default;
        if (body.Length < Size)
        {
            return false;
        }

        open = new FuseOpenIn(BinaryPrimitives.ReadInt32LittleEndian(body));
        return true;
    }
}

/// <summary>fuse_setattr_in (88 bytes): only which attributes change and the new size matter here.</summary>
internal readonly record struct FuseSetAttrIn(uint Valid, ulong Size)
{
    public const int Size88 = 88;
    public const uint ValidSize = 8;

    public static bool TryRead(ReadOnlySpan<byte> body, out FuseSetAttrIn set)
    {
        set = default;
        if (body.Length < Size88)
        {
            return false;
        }

        set = new FuseSetAttrIn(BinaryPrimitives.ReadUInt32LittleEndian(body), BinaryPrimitives.ReadUInt64LittleEndian(body[16..]));
        return true;
    }
}

/// <summary>fuse_lseek_in (24 bytes): SEEK_DATA (3) or SEEK_HOLE (4) from an offset.</summary>
internal readonly record struct FuseLseekIn(long Offset, int Whence)
{
    public const int Size = 24;
    public const int SeekData = 3;
    public const int SeekHole = 4;

    public static bool TryRead(ReadOnlySpan<byte> body, out FuseLseekIn seek)
    {
        seek = default;
        if (body.Length < Size)
        {
            return false;
        }

        seek = new FuseLseekIn(BinaryPrimitives.ReadInt64LittleEndian(body[8..]), BinaryPrimitives.ReadInt32LittleEndian(body[16..]));
        return true;
    }
}

/// <summary>fuse_fallocate_in (32 bytes): fallocate(2)'s range and mode.</summary>
internal readonly record struct FuseFallocateIn(long Offset, long Length, int Mode)
{
    public const int Size = 32;
    public const int KeepSize = 1;
    public const int PunchHole = 2;
    public const int ZeroRange = 0x10;

    public static bool TryRead(ReadOnlySpan<byte> body, out FuseFallocateIn fallocate)
    {
        fallocate = default;
        if (body.Length < Size)
        {
            return false;
        }

        fallocate = new FuseFallocateIn(
            BinaryPrimitives.ReadInt64LittleEndian(body[8..]),
            BinaryPrimitives.ReadInt64LittleEndian(body[16..]),
            BinaryPrimitives.ReadInt32LittleEndian(body[24..]));
        return fallocate.Offset >= 0 && fallocate.Length > 0;
    }
}

/// <summary>The NUL-terminated name of LOOKUP.</summary>
internal static class FuseName
{
    public static ReadOnlySpan<byte> Read(ReadOnlySpan<byte> body)
    {
        int nul = body.IndexOf((byte)0);
        return nul < 0 ? body : body[..nul];
    }
}
