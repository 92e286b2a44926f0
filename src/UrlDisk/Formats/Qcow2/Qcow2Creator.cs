using System.Buffers.Binary;
using System.Numerics;
using UrlDisk.Opening;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// Creates empty qcow2 images laid out as qemu-img does: header, refcount table, refcount blocks, then the L1
/// table, all refcounted; optional backing file name and format.
/// </summary>
public static class Qcow2Creator
{
    /// <summary>Writes a new, empty image at <paramref name="path"/> (replacing any file there).</summary>
    public static async Task CreateAsync(string path, long size, Qcow2CreateOptions? options = null, CancellationToken cancellationToken = default)
    {
        var bytes = Build(size, options ?? new Qcow2CreateOptions());
        await using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous);
        await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Creates the image and opens it for writing (the API <c>convert -O qcow2</c> uses).</summary>
    internal static Task<Qcow2Image> CreateAndOpenAsync(string path, long size, Qcow2CreateOptions? options = null, CancellationToken cancellationToken = default)
        => CreateAndOpenAsync(path, size, options, orderWrites: true, cancellationToken);

    /// <param name="orderWrites">False for an image that is only used once complete (convert's output): no flushes to order metadata writes.</param>
    internal static async Task<Qcow2Image> CreateAndOpenAsync(string path, long size, Qcow2CreateOptions? options, bool orderWrites, CancellationToken cancellationToken)
    {
        await CreateAsync(path, size, options, cancellationToken).ConfigureAwait(false);
        var file = HostFiles.OpenWritable(path);
        try
        {
            var context = new OpenContext { Writable = true, BaseLocation = path };
            return await Qcow2Image.OpenAsync(file, context, new FileHostFile(file), cancellationToken, orderWrites).ConfigureAwait(false);
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The bytes of a new empty image (pure).</summary>
    internal static byte[] Build(long size, Qcow2CreateOptions o)
    {
        o.Validate();
        if (size < 0 || size % 512 != 0)
        {
            throw new OptionException($"qcow2: image size {size} must be a non-negative multiple of 512 bytes");
        }

        if (size >= 1L << 62)
        {
            // What the reader (and QEMU) refuse to open; also keeps the L1 arithmetic below from overflowing.
            throw new OptionException($"qcow2: image size {size} is too large; a qcow2 image must be smaller than 2^62 bytes (4E)");
        }

        int clusterBits = BitOperations.Log2((uint)o.ClusterSize);
        long cs = o.ClusterSize;
        int l2Bits = clusterBits - (o.ExtendedL2 ? 4 : 3);
        long l1Entries = (size + (cs << l2Bits) - 1) >> (clusterBits + l2Bits);
        if (l1Entries * 8 > 32L * 1024 * 1024)
        {
            throw new OptionException($"qcow2: size {size} needs an L1 table larger than 32 MiB; use a larger cluster_size");
        }

        long l1Clusters = Math.Max(1, (l1Entries * 8 + cs - 1) / cs);
        int order = BitOperations.Log2((uint)o.RefcountBits);
        long perBlock = (cs * 8) >> order;
        long blocks = 1, tableClusters = 1;
        while (true)
        {
            long total = 1 + tableClusters + blocks + l1Clusters;
            long needBlocks = (total + perBlock - 1) / perBlock;
            long needTable = Math.Max(1, (needBlocks * 8 + cs - 1) / cs);
            if (needBlocks == blocks && needTable == tableClusters)
            {
                break;
            }

            blocks = needBlocks;
            tableClusters = needTable;
        }

        long tableOffset = cs;
        long blocksOffset = tableOffset + (tableClusters * cs);
        long l1Offset = blocksOffset + (blocks * cs);
        long totalClusters = 1 + tableClusters + blocks + l1Clusters;
        var image = new byte[totalClusters * cs];

        bool v3 = o.Version == 3;
        bool zstd = o.CompressionType == "zstd";
        var header = new Qcow2Header
        {
            Version = (uint)o.Version,
            ClusterBits = clusterBits,
            Size = (ulong)size,
            L1Size = (uint)l1Entries,
            L1TableOffset = (ulong)l1Offset,
            RefcountTableOffset = (ulong)tableOffset,
            RefcountTableClusters = (uint)tableClusters,
            IncompatibleFeatures = (zstd ? Qcow2Features.CompressionType : 0) | (o.ExtendedL2 ? Qcow2Features.ExtendedL2 : 0),
            CompatibleFeatures = o.LazyRefcounts ? Qcow2Features.LazyRefcounts : 0,
            RefcountOrder = order,
            HeaderLength = (uint)(v3 ? Qcow2Header.CurrentV3Length : Qcow2Header.V2Length),
            CompressionType = zstd ? ClusterCompression.Zstd : ClusterCompression.Zlib,
        };
        var cluster0 = new Qcow2HeaderCluster
        {
            Header = header,
            BackingFile = o.BackingFile,
            BackingFormat = o.BackingFile is null ? null : o.BackingFormat,
            FeatureNames = v3 ? FeatureName.Standard : [],
        };
        if (!cluster0.TryWrite(image.AsSpan(0, (int)cs), out _))
        {
            // Small clusters: drop the optional feature-name table to make room.
            cluster0 = cluster0 with { FeatureNames = [] };
            if (!cluster0.TryWrite(image.AsSpan(0, (int)cs), out _))
            {
                throw new OptionException($"qcow2: the header and backing file name do not fit in one {cs}-byte cluster; use a larger cluster_size");
            }
        }

        for (long b = 0; b < blocks; b++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan((int)(tableOffset + (b * 8))), (ulong)(blocksOffset + (b * cs)));
        }

        for (long c = 0; c < totalClusters; c++)
        {
            long b = c / perBlock;
            RefcountBlock.Set(image.AsSpan((int)(blocksOffset + (b * cs)), (int)cs), order, c % perBlock, 1);
        }

        return image;
    }
}
