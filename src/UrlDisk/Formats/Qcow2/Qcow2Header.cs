using System.Buffers.Binary;

namespace UrlDisk.Formats.Qcow2;

/// <summary>The fixed qcow2 header (v2: 72 bytes, v3: 104 or more), as stored at offset 0. Pure codec.</summary>
internal sealed record Qcow2Header
{
    public const uint Magic = 0x514649FB; // "QFI\xfb"
    public const int V2Length = 72;
    public const int V3MinLength = 104;
    public const int CurrentV3Length = 112;

    public uint Version { get; init; } = 3;
    public ulong BackingFileOffset { get; init; }
    public uint BackingFileSize { get; init; }
    public int ClusterBits { get; init; } = 16;
    public ulong Size { get; init; }
    public uint CryptMethod { get; init; }
    public uint L1Size { get; init; }
    public ulong L1TableOffset { get; init; }
    public ulong RefcountTableOffset { get; init; }
    public uint RefcountTableClusters { get; init; }
    public uint SnapshotCount { get; init; }
    public ulong SnapshotsOffset { get; init; }
    public ulong IncompatibleFeatures { get; init; }
    public ulong CompatibleFeatures { get; init; }
    public ulong AutoclearFeatures { get; init; }
    public int RefcountOrder { get; init; } = 4;
    public uint HeaderLength { get; init; } = CurrentV3Length;
    public byte CompressionType { get; init; }

    /// <summary>Bytes after the fields this codec knows (kept and written back as they are).</summary>
    public byte[] UnknownFields { get; init; } = [];

    public long ClusterSize => 1L << ClusterBits;
    public int RefcountBits => 1 << RefcountOrder;

    public bool IsDirty => (IncompatibleFeatures & Qcow2Features.Dirty) != 0;
    public bool IsCorrupt => (IncompatibleFeatures & Qcow2Features.Corrupt) != 0;
    public bool HasExtendedL2 => (IncompatibleFeatures & Qcow2Features.ExtendedL2) != 0;

    /// <summary>Parses and checks the fields that do not depend on the file size. On failure <paramref name="error"/> names the field and offset.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out Qcow2Header header, out string? error)
    {
        header = new Qcow2Header();
        error = null;
        if (source.Length < V2Length)
        {
            error = $"header: {source.Length} bytes, a qcow2 header needs at least {V2Length}";
            return false;
        }

        if (BinaryPrimitives.ReadUInt32BigEndian(source) != Magic)
        {
            error = "header at offset 0: magic is not QFI\\xfb";
            return false;
        }

        uint version = BinaryPrimitives.ReadUInt32BigEndian(source[4..]);
        if (version is not (2 or 3))
        {
            // Worded as qemu-img says it; version 1 is the older qcow format, which has the same magic.
            error = version == 1
                ? "header at offset 4: version 1 is the old qcow format, which is not supported (qcow2 versions 2 and 3 are)"
                : $"Unsupported qcow2 version {version} (header at offset 4; versions 2 and 3 are supported)";
            return false;
        }

        var h = new Qcow2Header
        {
            Version = version,
            BackingFileOffset = BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BackingFileSize = BinaryPrimitives.ReadUInt32BigEndian(source[16..]),
            ClusterBits = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(source[20..]), 64),
            Size = BinaryPrimitives.ReadUInt64BigEndian(source[24..]),
            CryptMethod = BinaryPrimitives.ReadUInt32BigEndian(source[32..]),
            L1Size = BinaryPrimitives.ReadUInt32BigEndian(source[36..]),
            L1TableOffset = BinaryPrimitives.ReadUInt64BigEndian(source[40..]),
            RefcountTableOffset = BinaryPrimitives.ReadUInt64BigEndian(source[48..]),
            RefcountTableClusters = BinaryPrimitives.ReadUInt32BigEndian(source[56..]),
            SnapshotCount = BinaryPrimitives.ReadUInt32BigEndian(source[60..]),
            SnapshotsOffset = BinaryPrimitives.ReadUInt64BigEndian(source[64..]),
            RefcountOrder = 4,
            HeaderLength = V2Length,
        };

        if (version == 3)
        {
            if (source.Length < V3MinLength)
            {
                error = $"header: {source.Length} bytes, a version 3 header needs at least {V3MinLength}";
                return false;
            }

            uint headerLength = BinaryPrimitives.ReadUInt32BigEndian(source[100..]);
            if (headerLength < V3MinLength || headerLength % 8 != 0)
            {
                error = $"header at offset 100: header_length {headerLength} must be at least {V3MinLength} and a multiple of 8";
                return false;
            }

            if (headerLength > source.Length)
            {
                error = $"header at offset 100: header_length {headerLength} runs past the {source.Length} bytes available";
                return false;
            }

            uint order = BinaryPrimitives.ReadUInt32BigEndian(source[96..]);
            if (order > 6)
            {
                error = $"header at offset 96: refcount_order {order} is too large (at most 6, i.e. 64-bit refcounts)";
                return false;
            }

            byte compression = headerLength > 104 ? source[104] : (byte)0;
            h = h with
            {
                IncompatibleFeatures = BinaryPrimitives.ReadUInt64BigEndian(source[72..]),
                CompatibleFeatures = BinaryPrimitives.ReadUInt64BigEndian(source[80..]),
                AutoclearFeatures = BinaryPrimitives.ReadUInt64BigEndian(source[88..]),
                RefcountOrder = (int)order,
                HeaderLength = headerLength,
                CompressionType = compression,
                UnknownFields = headerLength > CurrentV3Length ? source[CurrentV3Length..(int)headerLength].ToArray() : [],
            };
        }

        if (h.ClusterBits is < 9 or > 21)
        {
            error = $"header at offset 20: cluster_bits {h.ClusterBits} is outside 9..21 (512 B to 2 MiB clusters)";
            return false;
        }

        if (h.HeaderLength > h.ClusterSize)
        {
            error = $"header at offset 100: header_length {h.HeaderLength} is larger than a cluster ({h.ClusterSize})";
            return false;
        }

        if (h.HasExtendedL2 && h.ClusterBits < 14)
        {
            error = $"header at offset 72: extended L2 entries need clusters of at least 16 KiB, not {h.ClusterSize}";
            return false;
        }

        bool compressionBit = (h.IncompatibleFeatures & Qcow2Features.CompressionType) != 0;
        if (h.CompressionType > 1)
        {
            error = $"header at offset 104: compression_type {h.CompressionType} is unknown (0 = zlib, 1 = zstd)";
            return false;
        }

        if (compressionBit != (h.CompressionType != 0))
        {
            error = $"header at offset 72: the compression-type feature bit is {(compressionBit ? "set" : "clear")} but compression_type is {h.CompressionType}";
            return false;
        }

        header = h;
        return true;
    }

    /// <summary>Writes <see cref="HeaderLength"/> bytes (72 for v2).</summary>
    public void Write(Span<byte> destination)
    {
        int length = Version == 2 ? V2Length : (int)HeaderLength;
        destination[..length].Clear();
        BinaryPrimitives.WriteUInt32BigEndian(destination, Magic);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], Version);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], BackingFileOffset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], BackingFileSize);
        BinaryPrimitives.WriteUInt32BigEndian(destination[20..], (uint)ClusterBits);
        BinaryPrimitives.WriteUInt64BigEndian(destination[24..], Size);
        BinaryPrimitives.WriteUInt32BigEndian(destination[32..], CryptMethod);
        BinaryPrimitives.WriteUInt32BigEndian(destination[36..], L1Size);
        BinaryPrimitives.WriteUInt64BigEndian(destination[40..], L1TableOffset);
        BinaryPrimitives.WriteUInt64BigEndian(destination[48..], RefcountTableOffset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[56..], RefcountTableClusters);
        BinaryPrimitives.WriteUInt32BigEndian(destination[60..], SnapshotCount);
        BinaryPrimitives.WriteUInt64BigEndian(destination[64..], SnapshotsOffset);
        if (Version == 2)
        {
            return;
        }

        BinaryPrimitives.WriteUInt64BigEndian(destination[72..], IncompatibleFeatures);
        BinaryPrimitives.WriteUInt64BigEndian(destination[80..], CompatibleFeatures);
        BinaryPrimitives.WriteUInt64BigEndian(destination[88..], AutoclearFeatures);
        BinaryPrimitives.WriteUInt32BigEndian(destination[96..], (uint)RefcountOrder);
        BinaryPrimitives.WriteUInt32BigEndian(destination[100..], HeaderLength);
        if (HeaderLength > 104)
        {
            destination[104] = CompressionType;
        }

        if (HeaderLength > CurrentV3Length)
        {
            UnknownFields.AsSpan(0, Math.Min(UnknownFields.Length, (int)HeaderLength - CurrentV3Length)).CopyTo(destination[CurrentV3Length..]);
        }
    }
}
