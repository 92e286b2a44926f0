using System.Buffers.Binary;
using System.Text;

namespace UrlDisk.Formats.Vpc;

/// <summary>A parent locator entry of a differencing VHD: where a platform-specific parent path is stored.</summary>
internal readonly record struct VpcParentLocator(string PlatformCode, uint DataSpace, uint DataLength, ulong DataOffset);

/// <summary>The 1024-byte dynamic disk header ("cxsparse", big-endian) at the footer's data offset.</summary>
internal sealed record VpcDynamicHeader
{
    public const int Size = 1024;

    public required ulong TableOffset { get; init; }
    public required uint MaxTableEntries { get; init; }
    public required uint BlockSize { get; init; }
    public Guid ParentUniqueId { get; init; }
    public uint ParentTimestamp { get; init; }
    public string ParentName { get; init; } = "";
    public IReadOnlyList<VpcParentLocator> Locators { get; init; } = [];

    public static VpcDynamicHeader Parse(ReadOnlySpan<byte> b, long fileOffset)
    {
        if (b.Length < Size || !b[..8].SequenceEqual("cxsparse"u8))
        {
            throw new ImageFormatException($"vpc: no dynamic disk header (cookie \"cxsparse\") at offset {fileOffset}");
        }

        uint stored = BinaryPrimitives.ReadUInt32BigEndian(b[36..]);
        uint sum = 0;
        for (int i = 0; i < Size; i++)
        {
            if (i is < 36 or >= 40)
            {
                sum += b[i];
            }
        }

        if (stored != ~sum)
        {
            throw new ImageFormatException($"vpc: dynamic disk header at offset {fileOffset}: incorrect checksum (stored 0x{stored:x8}, computed 0x{~sum:x8})");
        }

        uint blockSize = BinaryPrimitives.ReadUInt32BigEndian(b[32..]);
        if (blockSize < 512 || !uint.IsPow2(blockSize))
        {
            throw new ImageFormatException($"vpc: dynamic disk header at offset {fileOffset}: block size {blockSize} is not a power of 2 of at least 512");
        }

        var locators = new List<VpcParentLocator>();
        for (int i = 0; i < 8; i++)
        {
            var e = b.Slice(576 + (i * 24), 24);
            uint code = BinaryPrimitives.ReadUInt32BigEndian(e);
            if (code != 0)
            {
                locators.Add(new VpcParentLocator(
                    Encoding.Latin1.GetString(e[..4]),
                    BinaryPrimitives.ReadUInt32BigEndian(e[4..]),
                    BinaryPrimitives.ReadUInt32BigEndian(e[8..]),
                    BinaryPrimitives.ReadUInt64BigEndian(e[16..])));
            }
        }

        string parentName = Encoding.BigEndianUnicode.GetString(b.Slice(64, 512));
        int nul = parentName.IndexOf('\0', StringComparison.Ordinal);
        return new VpcDynamicHeader
        {
            TableOffset = BinaryPrimitives.ReadUInt64BigEndian(b[16..]),
            MaxTableEntries = BinaryPrimitives.ReadUInt32BigEndian(b[28..]),
            BlockSize = blockSize,
            ParentUniqueId = new Guid(b.Slice(40, 16), bigEndian: true),
            ParentTimestamp = BinaryPrimitives.ReadUInt32BigEndian(b[56..]),
            ParentName = nul >= 0 ? parentName[..nul] : parentName,
            Locators = locators,
        };
    }
}
