using System.Buffers.Binary;
using System.Text;

namespace UrlDisk.Formats.Qcow2;

/// <summary>An entry of the snapshot table (variable length, padded to 8 bytes).</summary>
internal sealed record SnapshotEntry
{
    public const int FixedSize = 40;

    public long L1Offset { get; init; }
    public uint L1Size { get; init; }
    public string Id { get; init; } = "";
    public string Name { get; init; } = "";
    public uint DateSeconds { get; init; }
    public uint DateNanoseconds { get; init; }
    public ulong VmClockNanoseconds { get; init; }
    public uint VmStateSize { get; init; }
    public byte[] ExtraData { get; init; } = [];

    /// <summary>Virtual disk size at the time of the snapshot, from the extra data when present.</summary>
    public ulong? DiskSize => ExtraData.Length >= 16 ? BinaryPrimitives.ReadUInt64BigEndian(ExtraData.AsSpan(8)) : null;

    /// <summary>The VM state size from the extra data (64-bit) when present, else the 32-bit header field.</summary>
    public ulong VmStateSizeLarge => ExtraData.Length >= 8 ? BinaryPrimitives.ReadUInt64BigEndian(ExtraData) : VmStateSize;

    /// <summary>The guest's instruction count at the snapshot, when recorded (all ones means not recorded).</summary>
    public long? Icount => ExtraData.Length >= 24 && BinaryPrimitives.ReadUInt64BigEndian(ExtraData.AsSpan(16)) is var n && n != ulong.MaxValue ? (long)n : null;

    public int StoredLength => (FixedSize + ExtraData.Length + Encoding.UTF8.GetByteCount(Id) + Encoding.UTF8.GetByteCount(Name) + 7) & ~7;

    /// <summary>Parses one entry; <paramref name="consumed"/> includes padding.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out SnapshotEntry entry, out int consumed)
    {
        entry = new SnapshotEntry();
        consumed = 0;
        if (source.Length < FixedSize)
        {
            return false;
        }

        int idLength = BinaryPrimitives.ReadUInt16BigEndian(source[12..]);
        int nameLength = BinaryPrimitives.ReadUInt16BigEndian(source[14..]);
        uint extraSize = BinaryPrimitives.ReadUInt32BigEndian(source[36..]);
        long total = FixedSize + (long)extraSize + idLength + nameLength;
        if (extraSize > 1024 * 1024 || total > source.Length)
        {
            return false;
        }

        int pos = FixedSize;
        var extra = source.Slice(pos, (int)extraSize).ToArray();
        pos += (int)extraSize;
        string id = Encoding.UTF8.GetString(source.Slice(pos, idLength));
        pos += idLength;
        string name = Encoding.UTF8.GetString(source.Slice(pos, nameLength));
        pos += nameLength;
        entry = new SnapshotEntry
        {
            L1Offset = (long)BinaryPrimitives.ReadUInt64BigEndian(source),
            L1Size = BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
            DateSeconds = BinaryPrimitives.ReadUInt32BigEndian(source[16..]),
            DateNanoseconds = BinaryPrimitives.ReadUInt32BigEndian(source[20..]),
            VmClockNanoseconds = BinaryPrimitives.ReadUInt64BigEndian(source[24..]),
            VmStateSize = BinaryPrimitives.ReadUInt32BigEndian(source[32..]),
            ExtraData = extra,
            Id = id,
            Name = name,
        };
        consumed = (pos + 7) & ~7;
        return true;
    }

    public int Write(Span<byte> destination)
    {
        int stored = StoredLength;
        destination[..stored].Clear();
        var id = Encoding.UTF8.GetBytes(Id);
        var name = Encoding.UTF8.GetBytes(Name);
        BinaryPrimitives.WriteUInt64BigEndian(destination, (ulong)L1Offset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], L1Size);
        BinaryPrimitives.WriteUInt16BigEndian(destination[12..], (ushort)id.Length);
        BinaryPrimitives.WriteUInt16BigEndian(destination[14..], (ushort)name.Length);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], DateSeconds);
        BinaryPrimitives.WriteUInt32BigEndian(destination[20..], DateNanoseconds);
        BinaryPrimitives.WriteUInt64BigEndian(destination[24..], VmClockNanoseconds);
        BinaryPrimitives.WriteUInt32BigEndian(destination[32..], VmStateSize);
        BinaryPrimitives.WriteUInt32BigEndian(destination[36..], (uint)ExtraData.Length);
        int pos = FixedSize;
        ExtraData.CopyTo(destination[pos..]);
        pos += ExtraData.Length;
        id.CopyTo(destination[pos..]);
        pos += id.Length;
        name.CopyTo(destination[pos..]);
        return stored;
    }
}
