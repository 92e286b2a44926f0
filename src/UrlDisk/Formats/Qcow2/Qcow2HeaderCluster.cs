using System.Text;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Everything stored in cluster 0: the header, its extensions and the backing file name. Pure codec:
/// <see cref="TryRead"/> takes the bytes of cluster 0 (or as much of it as the file has).
/// </summary>
internal sealed record Qcow2HeaderCluster
{
    public required Qcow2Header Header { get; init; }
    public string? BackingFile { get; init; }
    public string? BackingFormat { get; init; }
    public IReadOnlyList<FeatureName> FeatureNames { get; init; } = [];
    public string? ExternalDataFile { get; init; }

    /// <summary>Extensions other than backing format, feature names and data file, kept to be written back.</summary>
    public IReadOnlyList<HeaderExtension> OtherExtensions { get; init; } = [];

    public static bool TryRead(ReadOnlySpan<byte> cluster0, out Qcow2HeaderCluster result, out string? error)
    {
        result = null!;
        if (!Qcow2Header.TryRead(cluster0, out var header, out error))
        {
            return false;
        }

        long clusterSize = header.ClusterSize;
        if (header.BackingFileOffset > (ulong)clusterSize || header.BackingFileSize > 1023
            || header.BackingFileOffset + header.BackingFileSize > (ulong)clusterSize)
        {
            error = $"header at offset 8: backing file name ({header.BackingFileSize} bytes at {header.BackingFileOffset}) must lie within cluster 0 and be at most 1023 bytes";
            return false;
        }

        string? backing = null;
        if (header.BackingFileOffset != 0)
        {
            if (header.BackingFileOffset + header.BackingFileSize > (ulong)cluster0.Length)
            {
                error = $"backing file name at offset {header.BackingFileOffset}: past the end of the file";
                return false;
            }

            backing = Encoding.UTF8.GetString(cluster0.Slice((int)header.BackingFileOffset, (int)header.BackingFileSize));
        }

        var features = new List<FeatureName>();
        var others = new List<HeaderExtension>();
        string? backingFormat = null;
        string? dataFile = null;
        // v2 images have extensions too (after the 72-byte header).
        int start = (int)header.HeaderLength;
        int end = (int)Math.Min(header.BackingFileOffset != 0 ? (long)header.BackingFileOffset : clusterSize, cluster0.Length);
        if (end > start)
        {
            if (!HeaderExtension.TryReadAll(cluster0[start..end], start, out var extensions, out error))
            {
                return false;
            }

            foreach (var e in extensions)
            {
                switch (e.Type)
                {
                    case HeaderExtension.BackingFormat:
                        backingFormat = Encoding.UTF8.GetString(e.Data);
                        break;
                    case HeaderExtension.FeatureNameTable:
                        features.AddRange(FeatureName.ReadTable(e.Data));
                        break;
                    case HeaderExtension.ExternalDataFile:
                        dataFile = Encoding.UTF8.GetString(e.Data);
                        break;
                    default:
                        others.Add(e);
                        break;
                }
            }
        }

        result = new Qcow2HeaderCluster
        {
            Header = header,
            BackingFile = string.IsNullOrEmpty(backing) ? null : backing,
            BackingFormat = backingFormat,
            FeatureNames = features,
            ExternalDataFile = dataFile,
            OtherExtensions = others,
        };
        return true;
    }

    /// <summary>The name of an incompatible feature bit, from the image's table or the standard names.</summary>
    public string IncompatibleFeatureName(int bit)
    {
        foreach (var f in FeatureNames)
        {
            if (f.Type == FeatureType.Incompatible && f.Bit == bit)
            {
                return f.Name;
            }
        }

        return Qcow2Features.DefaultIncompatibleName(bit);
    }

    /// <summary>
    /// Writes header, extensions (in QEMU's order) and backing name into <paramref name="cluster0"/>,
    /// fixing up the backing offset/size fields. Returns false when it does not fit in the cluster.
    /// </summary>
    public bool TryWrite(Span<byte> cluster0, out Qcow2Header written)
    {
        var extensions = new List<HeaderExtension>();
        if (BackingFormat is not null)
        {
            extensions.Add(new HeaderExtension(HeaderExtension.BackingFormat, Encoding.UTF8.GetBytes(BackingFormat)));
        }

        if (ExternalDataFile is not null)
        {
            extensions.Add(new HeaderExtension(HeaderExtension.ExternalDataFile, Encoding.UTF8.GetBytes(ExternalDataFile)));
        }

        extensions.AddRange(OtherExtensions.Where(e => e.Type == HeaderExtension.FullDiskEncryption));
        if (FeatureNames.Count > 0)
        {
            extensions.Add(new HeaderExtension(HeaderExtension.FeatureNameTable, FeatureName.EncodeTable(FeatureNames)));
        }

        extensions.AddRange(OtherExtensions.Where(e => e.Type != HeaderExtension.FullDiskEncryption));

        byte[] name = BackingFile is null ? [] : Encoding.UTF8.GetBytes(BackingFile);
        var h = Header;
        int pos = h.Version == 2 ? Qcow2Header.V2Length : (int)h.HeaderLength;
        int needed = pos + extensions.Sum(e => e.StoredLength) + 8 + name.Length;
        written = h;
        if (needed > cluster0.Length || name.Length > 1023)
        {
            return false;
        }

        cluster0.Clear();
        foreach (var e in extensions)
        {
            pos += e.Write(cluster0[pos..]);
        }

        pos += 8; // end marker (zeros)
        h = h with { BackingFileOffset = name.Length > 0 ? (ulong)pos : 0, BackingFileSize = (uint)name.Length };
        name.CopyTo(cluster0[pos..]);
        h.Write(cluster0);
        written = h;
        return true;
    }
}
