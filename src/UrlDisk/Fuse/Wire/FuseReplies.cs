using System.Buffers.Binary;

namespace UrlDisk.Fuse.Wire;

/// <summary>fuse_attr (88 bytes): the attributes of the one file or of the directory holding it.</summary>
internal readonly record struct FuseAttr(ulong Ino, long Size, long TimeSeconds, uint Mode, uint Uid, uint Gid)
{
    public const int Size88 = 88;

    public bool TryWrite(Span<byte> destination)
    {
        if (destination.Length < Size88)
        {
            return false;
        }

        destination[..Size88].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(destination, Ino);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], Size);
        BinaryPrimitives.WriteInt64LittleEndian(destination[16..], (Size + 511) / 512); // blocks of 512 bytes
        BinaryPrimitives.WriteInt64LittleEndian(destination[24..], TimeSeconds); // atime
        BinaryPrimitives.WriteInt64LittleEndian(destination[32..], TimeSeconds); // mtime
        BinaryPrimitives.WriteInt64LittleEndian(destination[40..], TimeSeconds); // ctime
        BinaryPrimitives.WriteUInt32LittleEndian(destination[60..], Mode);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[64..], 1); // nlink
        BinaryPrimitives.WriteUInt32LittleEndian(destination[68..], Uid);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[72..], Gid);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[80..], 4096); // blksize
        return true;
    }
}

/// <summary>The fixed-size reply bodies.</summary>
internal static class FuseReplies
{
    public const int AttrOutSize = 104;
    public const int EntryOutSize = 128;
    public const int OpenOutSize = 16;
    public const int WriteOutSize = 8;
    public const int LseekOutSize = 8;
    public const int StatFsOutSize = 80;

    public const uint OpenKeepCache = 2;

    /// <summary>fuse_attr_out: how long the kernel may keep the attributes, then the attributes.</summary>
    public static bool TryWriteAttrOut(Span<byte> destination, ulong validSeconds, in FuseAttr attr)
    {
        if (destination.Length < AttrOutSize)
        {
            return false;
        }

        BinaryPrimitives.WriteUInt64LittleEndian(destination, validSeconds);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], 0); // attr_valid_nsec, dummy
        return attr.TryWrite(destination[16..]);
    }

    /// <summary>fuse_entry_out: the node a name resolves to, how long that holds, and its attributes.</summary>
    public static bool TryWriteEntryOut(Span<byte> destination, ulong nodeId, ulong validSeconds, in FuseAttr attr)
    {
        if (destination.Length < EntryOutSize)
        {
            return false;
        }

        BinaryPrimitives.WriteUInt64LittleEndian(destination, nodeId);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], 0); // generation
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], validSeconds); // entry_valid
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], validSeconds); // attr_valid
        BinaryPrimitives.WriteUInt64LittleEndian(destination[32..], 0); // entry_valid_nsec, attr_valid_nsec
        return attr.TryWrite(destination[40..]);
    }

    /// <summary>fuse_open_out: the handle (unused: there is one file) and FOPEN_* flags.</summary>
    public static bool TryWriteOpenOut(Span<byte> destination, uint openFlags)
    {
        if (destination.Length < OpenOutSize)
        {
            return false;
        }

        destination[..OpenOutSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], openFlags);
        return true;
    }

    /// <summary>fuse_write_out: how many bytes were written.</summary>
    public static bool TryWriteWriteOut(Span<byte> destination, uint written)
    {
        if (destination.Length < WriteOutSize)
        {
            return false;
        }

        BinaryPrimitives.WriteUInt64LittleEndian(destination, written); // size, then padding 0
        return true;
    }

    /// <summary>fuse_lseek_out: the offset found.</summary>
    public static bool TryWriteLseekOut(Span<byte> destination, long offset)
    {
        if (destination.Length < LseekOutSize)
        {
            return false;
        }

        BinaryPrimitives.WriteInt64LittleEndian(destination, offset);
        return true;
    }

    /// <summary>fuse_statfs_out (fuse_kstatfs): the image's size in 4 KiB blocks, nothing free.</summary>
    public static bool TryWriteStatFsOut(Span<byte> destination, long size)
    {
        if (destination.Length < StatFsOutSize)
        {
            return false;
        }

        destination[..StatFsOutSize].Clear();
        BinaryPrimitives.WriteInt64LittleEndian(destination, (size + 4095) / 4096); // blocks
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], 1); // files
        BinaryPrimitives.WriteUInt32LittleEndian(destination[40..], 4096); // bsize
        BinaryPrimitives.WriteUInt32LittleEndian(destination[44..], 255); // namelen
        BinaryPrimitives.WriteUInt32LittleEndian(destination[48..], 4096); // frsize
        return true;
    }

    /// <summary>
    /// One fuse_dirent (24 bytes plus the name, padded to 8). <paramref name="nextCookie"/> is the offset READDIR
    /// continues from after this entry. False when it does not fit.
    /// </summary>
    public static bool TryWriteDirent(Span<byte> destination, ulong ino, ulong nextCookie, uint type, ReadOnlySpan<byte> name, out int written)
    {
        written = (24 + name.Length + 7) & ~7;
        if (destination.Length < written)
        {
            written = 0;
            return false;
        }

        destination[..written].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(destination, ino);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], nextCookie);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], (uint)name.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], type);
        name.CopyTo(destination[24..]);
        return true;
    }
}
