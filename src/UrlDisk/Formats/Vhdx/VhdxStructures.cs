using System.Buffers.Binary;
using System.Text;

namespace UrlDisk.Formats.Vhdx;

/// <summary>One of the two VHDX headers (at 64 KiB and 128 KiB; 4 KiB, little-endian).</summary>
internal sealed record VhdxHeader(ulong Sequence, Guid FileWriteGuid, Guid DataWriteGuid, Guid LogGuid, ushort LogVersion, ushort Version, uint LogLength, ulong LogOffset)
{
    public const int Size = 4096;

    /// <summary>The header, or null when its signature or checksum is wrong (the other copy may be good).</summary>
    public static VhdxHeader? TryParse(ReadOnlySpan<byte> b)
    {
        if (b.Length < Size || !b[..4].SequenceEqual("head"u8) || !Crc32C.Matches(b[..Size], 4))
        {
            return null;
        }

        return new VhdxHeader(
            BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
            new Guid(b.Slice(16, 16)),
            new Guid(b.Slice(32, 16)),
            new Guid(b.Slice(48, 16)),
            BinaryPrimitives.ReadUInt16LittleEndian(b[64..]),
            BinaryPrimitives.ReadUInt16LittleEndian(b[66..]),
            BinaryPrimitives.ReadUInt32LittleEndian(b[68..]),
            BinaryPrimitives.ReadUInt64LittleEndian(b[72..]));
    }
}

/// <summary>An entry of the region table: a known GUID (BAT, metadata) and where that region lies.</summary>
internal readonly record struct VhdxRegion(Guid Id, long Offset, long Length, bool Required);

/// <summary>The region table (at 192 KiB, copy at 256 KiB; 64 KiB).</summary>
internal static class VhdxRegionTable
{
    public const int Size = 64 * 1024;
    public const int MaxEntries = 2047;
    public static readonly Guid Bat = new("2DC27766-F623-4200-9D64-115E9BFD4A08");
    public static readonly Guid Metadata = new("8B7CA206-4790-4B9A-B8FE-575F050F886E");

    /// <summary>The entries, or null when the signature or checksum is wrong; other defects throw.</summary>
    public static List<VhdxRegion>? TryParse(ReadOnlySpan<byte> b, long fileOffset, long fileLength)
    {
        if (b.Length < Size || !b[..4].SequenceEqual("regi"u8) || !Crc32C.Matches(b[..Size], 4))
        {
            return null;
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
        if (count > MaxEntries)
        {
            throw new ImageFormatException($"vhdx: region table at offset {fileOffset}: {count} entries, more than {MaxEntries}");
        }

        var regions = new List<VhdxRegion>();
        for (int i = 0; i < count; i++)
        {
            var e = b.Slice(16 + (i * 32), 32);
            var region = new VhdxRegion(
                new Guid(e[..16]),
                (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(e[16..]), long.MaxValue / 2),
                BinaryPrimitives.ReadUInt32LittleEndian(e[24..]),
                (BinaryPrimitives.ReadUInt32LittleEndian(e[28..]) & 1) != 0);
            string where = $"vhdx: region table at offset {fileOffset}, entry {i}";
            if (region.Id != Bat && region.Id != Metadata && region.Required)
            {
                throw new ImageFormatException($"{where}: unknown required region {region.Id}");
            }

            if (region.Offset % (1 << 20) != 0 || region.Offset < (1 << 20) || region.Length % (1 << 20) != 0 || region.Offset + region.Length > fileLength)
            {
                throw new ImageFormatException($"{where}: region at {region.Offset} ({region.Length} bytes) is not 1 MiB aligned past the headers, or outside the file ({fileLength} bytes)");
            }

            if (regions.Any(r => r.Id == region.Id || (region.Offset < r.Offset + r.Length && r.Offset < region.Offset + region.Length)))
            {
                throw new ImageFormatException($"{where}: region {region.Id} is duplicated or overlaps another");
            }

            regions.Add(region);
        }

        return regions;
    }
}

/// <summary>The metadata items a reader needs, from the metadata region.</summary>
internal sealed record VhdxMetadata(uint BlockSize, bool LeaveBlocksAllocated, bool HasParent, ulong VirtualDiskSize, uint LogicalSectorSize, uint PhysicalSectorSize, IReadOnlyDictionary<string, string> ParentLocator)
{
    public static readonly Guid FileParameters = new("CAA16737-FA36-4D43-B3B6-33F0AA44E76B");
    public static readonly Guid VirtualDiskSizeId = new("2FA54224-CD1B-4876-B211-5DBED83BF4B8");
    public static readonly Guid Page83 = new("BECA12AB-B2E6-4523-93EF-C309E000C746");
    public static readonly Guid LogicalSectorSizeId = new("8141BF1D-A96F-4709-BA47-F233A8FAAB5F");
    public static readonly Guid PhysicalSectorSizeId = new("CDA348C7-445D-4471-9CC9-E9885251C556");
    public static readonly Guid ParentLocatorId = new("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C");
    public static readonly Guid VhdxParentType = new("B04AEFB7-D19E-4A81-B789-25B8E9445913");

    /// <summary>Parses the whole metadata region <paramref name="r"/> read at <paramref name="fileOffset"/>.</summary>
    public static VhdxMetadata Parse(ReadOnlySpan<byte> r, long fileOffset)
    {
        string where = $"vhdx: metadata table at offset {fileOffset}";
        if (r.Length < 64 * 1024 || !r[..8].SequenceEqual("metadata"u8))
        {
            throw new ImageFormatException($"{where}: no signature \"metadata\"");
        }

        int count = BinaryPrimitives.ReadUInt16LittleEndian(r[10..]);
        if (count > 2047)
        {
            throw new ImageFormatException($"{where}: {count} entries, more than 2047");
        }

        var items = new Dictionary<Guid, byte[]>();
        for (int i = 0; i < count; i++)
        {
            var e = r.Slice(32 + (i * 32), 32);
            var id = new Guid(e[..16]);
            uint offset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(e[20..]);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(e[24..]);
            bool known = id == FileParameters || id == VirtualDiskSizeId || id == Page83 || id == LogicalSectorSizeId || id == PhysicalSectorSizeId || id == ParentLocatorId;
            if (!known && (flags & 4) != 0)
            {
                throw new ImageFormatException($"{where}, entry {i}: unknown required item {id}");
            }

            if (length == 0)
            {
                continue;
            }

            if (offset < 64 * 1024 || length > (1 << 20) || (long)offset + length > r.Length)
            {
                throw new ImageFormatException($"{where}, entry {i}: item {id} at {offset} ({length} bytes) is outside the metadata region ({r.Length} bytes)");
            }

            if (known && !items.TryAdd(id, r.Slice((int)offset, (int)length).ToArray()))
            {
                throw new ImageFormatException($"{where}, entry {i}: item {id} appears twice");
            }
        }

        byte[] Item(Guid id, int size, string name)
            => items.TryGetValue(id, out var v) && v.Length >= size ? v : throw new ImageFormatException($"{where}: the {name} item is missing or shorter than {size} bytes");

        var fp = Item(FileParameters, 8, "file parameters");
        uint blockSize = BinaryPrimitives.ReadUInt32LittleEndian(fp);
        uint fpFlags = BinaryPrimitives.ReadUInt32LittleEndian(fp.AsSpan(4));
        if (blockSize < (1 << 20) || blockSize > (256 << 20) || !uint.IsPow2(blockSize))
        {
            throw new ImageFormatException($"{where}: block size {blockSize} is not a power of 2 from 1 MiB to 256 MiB");
        }

        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(Item(VirtualDiskSizeId, 8, "virtual disk size"));
        uint logical = BinaryPrimitives.ReadUInt32LittleEndian(Item(LogicalSectorSizeId, 4, "logical sector size"));
        uint physical = BinaryPrimitives.ReadUInt32LittleEndian(Item(PhysicalSectorSizeId, 4, "physical sector size"));
        if (logical is not (512 or 4096) || physical is not (512 or 4096))
        {
            throw new ImageFormatException($"{where}: sector sizes {logical}/{physical} are not 512 or 4096");
        }

        if (size == 0 || size > (64UL << 40) || size % logical != 0)
        {
            throw new ImageFormatException($"{where}: virtual disk size {size} is not a multiple of the sector size up to 64 TiB");
        }

        bool hasParent = (fpFlags & 2) != 0;
        var locator = hasParent ? ParseLocator(Item(ParentLocatorId, 20, "parent locator"), where) : new Dictionary<string, string>();
        return new VhdxMetadata(blockSize, (fpFlags & 1) != 0, hasParent, size, logical, physical, locator);
    }

    private static Dictionary<string, string> ParseLocator(ReadOnlySpan<byte> b, string where)
    {
        if (new Guid(b[..16]) != VhdxParentType)
        {
            throw new ImageFormatException($"{where}: the parent locator type {new Guid(b[..16])} is not the VHDX one");
        }

        int count = BinaryPrimitives.ReadUInt16LittleEndian(b[18..]);
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            int at = 20 + (i * 12);
            if (at + 12 > b.Length)
            {
                throw new ImageFormatException($"{where}: parent locator entry {i} runs past the item");
            }

            uint keyOffset = BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);
            uint valueOffset = BinaryPrimitives.ReadUInt32LittleEndian(b[(at + 4)..]);
            int keyLength = BinaryPrimitives.ReadUInt16LittleEndian(b[(at + 8)..]);
            int valueLength = BinaryPrimitives.ReadUInt16LittleEndian(b[(at + 10)..]);
            if (keyOffset + (ulong)keyLength > (ulong)b.Length || valueOffset + (ulong)valueLength > (ulong)b.Length)
            {
                throw new ImageFormatException($"{where}: parent locator entry {i} points past the item");
            }

            pairs[Encoding.Unicode.GetString(b.Slice((int)keyOffset, keyLength))] = Encoding.Unicode.GetString(b.Slice((int)valueOffset, valueLength));
        }

        return pairs;
    }
}
