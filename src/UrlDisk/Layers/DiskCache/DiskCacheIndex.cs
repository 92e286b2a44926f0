using System.Buffers.Binary;
using System.Text;

namespace UrlDisk.Layers.DiskCache;

/// <summary>Which file an entry holds and how it is cut into blocks: the index file's header, written once when the entry is made.</summary>
/// <param name="Location">The final URL without credentials (<see cref="Sources.ContentIdentity.Location"/>).</param>
/// <param name="Length">The file's size in bytes.</param>
/// <param name="Validators">The validators the file had when the entry was made.</param>
/// <param name="BlockSize">Bytes per block; the last block may be shorter.</param>
internal sealed record DiskCacheHeader(string Location, long Length, string Validators, int BlockSize)
{
    public long BlockCount => (Length + BlockSize - 1) / BlockSize;
}

/// <summary>
/// The index file of a disk cache entry (version 1), little-endian:
/// <code>
/// header:  "URLDCIDX" u32 version=1, u32 headerLength, u32 blockSize, u32 flags=0, u64 length,
///          u16 n + n bytes location (UTF-8), u16 m + m bytes validators (UTF-8), zero padding to a multiple of 16,
///          u32 CRC-32C of every header byte before it (the header's last 4 bytes)
/// records: 16 bytes each, appended: u64 block, u32 CRC-32C of the block's data, u32 CRC-32C of the record's first 12 bytes
/// </code>
/// A record is appended only after its block's data is durable, and records are never changed, so a torn append
/// can only lose a claim (its checksum fails, it is skipped), never make one; the data checksum lets a reader
/// refuse a block whose bytes are not what was fetched. Pure span code: no I/O.
/// </summary>
internal static class DiskCacheIndex
{
    public const int Version = 1;
    public const int RecordSize = 16;
    public const int MaxLocationBytes = 8192;
    public const int MaxValidatorBytes = 1024;
    public const int MinBlockSize = 4096;
    public const int MaxBlockSize = 64 << 20;

    private const int FixedPart = 32;
    private static ReadOnlySpan<byte> Magic => "URLDCIDX"u8;

    /// <summary>The header's size in bytes: where the first record starts.</summary>
    public static int HeaderSize(DiskCacheHeader header)
        => Align16(FixedPart + 2 + Encoding.UTF8.GetByteCount(header.Location) + 2 + Encoding.UTF8.GetByteCount(header.Validators) + 4);

    /// <summary>Writes the header into <paramref name="destination"/> (at least <see cref="HeaderSize"/> bytes); returns its size.</summary>
    public static int WriteHeader(DiskCacheHeader header, Span<byte> destination)
    {
        int location = Encoding.UTF8.GetByteCount(header.Location);
        int validators = Encoding.UTF8.GetByteCount(header.Validators);
        if (location > MaxLocationBytes || validators > MaxValidatorBytes)
        {
            throw new ArgumentException($"disk cache: a location of {location} bytes or validators of {validators} bytes is too long (at most {MaxLocationBytes} and {MaxValidatorBytes})", nameof(header));
        }

        if (header.BlockSize is < MinBlockSize or > MaxBlockSize || header.Length < 0)
        {
            throw new ArgumentException("disk cache: block size or length out of range", nameof(header));
        }

        int size = HeaderSize(header);
        var d = destination[..size];
        d.Clear();
        Magic.CopyTo(d);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(d[12..], (uint)size);
        BinaryPrimitives.WriteUInt32LittleEndian(d[16..], (uint)header.BlockSize);
        BinaryPrimitives.WriteUInt32LittleEndian(d[20..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(d[24..], header.Length);
        int at = FixedPart;
        BinaryPrimitives.WriteUInt16LittleEndian(d[at..], (ushort)location);
        at += 2 + Encoding.UTF8.GetBytes(header.Location, d[(at + 2)..]);
        BinaryPrimitives.WriteUInt16LittleEndian(d[at..], (ushort)validators);
        Encoding.UTF8.GetBytes(header.Validators, d[(at + 2)..]);
        BinaryPrimitives.WriteUInt32LittleEndian(d[(size - 4)..], Crc32C.Compute(d[..(size - 4)]));
        return size;
    }

    /// <summary>
    /// Reads a header from the start of an index file. False with <paramref name="problem"/> (what is wrong, for a
    /// note) when the bytes are short, not an index, another version or damaged.
    /// </summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> data, out DiskCacheHeader? header, out int headerSize, out string? problem)
    {
        header = null;
        headerSize = 0;
        if (data.Length < FixedPart + 8)
        {
            problem = $"the index is {data.Length} bytes, shorter than any header";
            return false;
        }

        if (!data[..8].SequenceEqual(Magic))
        {
            problem = "the index does not start with URLDCIDX";
            return false;
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]);
        if (version != Version)
        {
            problem = $"the index has version {version}; this urldisk reads version {Version}";
            return false;
        }

        uint size = BinaryPrimitives.ReadUInt32LittleEndian(data[12..]);
        if (size < FixedPart + 8 || size % 16 != 0 || size > FixedPart + 8 + MaxLocationBytes + MaxValidatorBytes + 16)
        {
            problem = $"the index header claims {size} bytes";
            return false;
        }

        if (data.Length < size)
        {
            problem = $"the index is {data.Length} bytes, shorter than its {size}-byte header";
            return false;
        }

        var h = data[..(int)size];
        if (BinaryPrimitives.ReadUInt32LittleEndian(h[^4..]) != Crc32C.Compute(h[..^4]))
        {
            problem = "the index header's checksum does not match";
            return false;
        }

        uint blockSize = BinaryPrimitives.ReadUInt32LittleEndian(h[16..]);
        long length = BinaryPrimitives.ReadInt64LittleEndian(h[24..]);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(h[20..]);
        if (blockSize is < MinBlockSize or > MaxBlockSize || length < 0 || flags != 0)
        {
            problem = $"the index header holds block size {blockSize}, length {length}, flags {flags}";
            return false;
        }

        var rest = h[FixedPart..^4];
        if (!TryReadString(ref rest, MaxLocationBytes, out string? location) || !TryReadString(ref rest, MaxValidatorBytes, out string? validators)
            || rest.ContainsAnyExcept((byte)0))
        {
            problem = "the index header's strings do not fit it";
            return false;
        }

        header = new DiskCacheHeader(location, length, validators, (int)blockSize);
        if (HeaderSize(header) != size)
        {
            // Padding beyond the next multiple of 16: no writer makes it, and a second reading must see the same bytes.
            problem = $"the index header claims {size} bytes but its contents take {HeaderSize(header)}";
            header = null;
            return false;
        }

        headerSize = (int)size;
        problem = null;
        return true;
    }

    /// <summary>Writes one record: block <paramref name="block"/>'s data has checksum <paramref name="dataCrc"/>.</summary>
    public static void WriteRecord(long block, uint dataCrc, Span<byte> destination)
    {
        var d = destination[..RecordSize];
        BinaryPrimitives.WriteInt64LittleEndian(d, block);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], dataCrc);
        BinaryPrimitives.WriteUInt32LittleEndian(d[12..], Crc32C.Compute(d[..12]));
    }

    /// <summary>Reads one 16-byte record; false when its checksum fails (a torn or damaged append) or its block lies outside <paramref name="blockCount"/>.</summary>
    public static bool TryReadRecord(ReadOnlySpan<byte> data, long blockCount, out long block, out uint dataCrc)
    {
        block = BinaryPrimitives.ReadInt64LittleEndian(data);
        dataCrc = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]);
        return BinaryPrimitives.ReadUInt32LittleEndian(data[12..RecordSize]) == Crc32C.Compute(data[..12]) && block >= 0 && block < blockCount;
    }

    private static bool TryReadString(ref ReadOnlySpan<byte> data, int max, out string value)
    {
        value = "";
        if (data.Length < 2)
        {
            return false;
        }

        int n = BinaryPrimitives.ReadUInt16LittleEndian(data);
        if (n > max || data.Length < 2 + n)
        {
            return false;
        }

        try
        {
            value = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(data.Slice(2, n));
        }
        catch (DecoderFallbackException)
        {
            return false;
        }

        data = data[(2 + n)..];
        return true;
    }

    private static int Align16(int n) => (n + 15) & ~15;
}
