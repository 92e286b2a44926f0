using System.Text;

namespace UrlDisk.Formats.Qcow2;

internal enum FeatureType : byte
{
    Incompatible = 0,
    Compatible = 1,
    Autoclear = 2,
}

/// <summary>A 48-byte entry of the feature-name table extension: <c>u8 type, u8 bit, char name[46]</c>.</summary>
internal readonly record struct FeatureName(FeatureType Type, int Bit, string Name)
{
    public const int Size = 48;

    public static bool TryRead(ReadOnlySpan<byte> source, out FeatureName entry)
    {
        entry = default;
        if (source.Length < Size)
        {
            return false;
        }

        var name = source.Slice(2, 46);
        int nul = name.IndexOf((byte)0);
        entry = new FeatureName((FeatureType)source[0], source[1], Encoding.ASCII.GetString(nul < 0 ? name : name[..nul]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        destination[..Size].Clear();
        destination[0] = (byte)Type;
        destination[1] = (byte)Bit;
        Encoding.ASCII.GetBytes(Name.AsSpan(0, Math.Min(Name.Length, 46)), destination[2..]);
    }

    public static List<FeatureName> ReadTable(ReadOnlySpan<byte> data)
    {
        var list = new List<FeatureName>();
        for (int i = 0; i + Size <= data.Length; i += Size)
        {
            if (TryRead(data[i..], out var e))
            {
                list.Add(e);
            }
        }

        return list;
    }

    /// <summary>The table QEMU writes for v3 images.</summary>
    public static IReadOnlyList<FeatureName> Standard { get; } =
    [
        new(FeatureType.Incompatible, 0, "dirty bit"),
        new(FeatureType.Incompatible, 1, "corrupt bit"),
        new(FeatureType.Incompatible, 2, "external data file"),
        new(FeatureType.Incompatible, 3, "compression type"),
        new(FeatureType.Incompatible, 4, "extended L2 entries"),
        new(FeatureType.Compatible, 0, "lazy refcounts"),
        new(FeatureType.Autoclear, 0, "bitmaps"),
        new(FeatureType.Autoclear, 1, "raw external data"),
    ];

    /// <summary>What QEMU writes for a v3 image with this cluster size: no table at 4 KiB and below, where its 392
    /// bytes would crowd out a backing file name in the header cluster.</summary>
    public static IReadOnlyList<FeatureName> ForClusterSize(long clusterSize) => clusterSize > 4096 ? Standard : [];

    public static byte[] EncodeTable(IReadOnlyList<FeatureName> entries)
    {
        var data = new byte[entries.Count * Size];
        for (int i = 0; i < entries.Count; i++)
        {
            entries[i].Write(data.AsSpan(i * Size));
        }

        return data;
    }
}
