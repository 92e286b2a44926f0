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
        options ??= new Qcow2CreateOptions();
        if (options.Preallocation != "off" && size > 0)
        {
            await CreatePreallocatedAsync(path, size, options, cancellationToken).ConfigureAwait(false);
            return;
        }

        var bytes = Build(size, options);
        await using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous);
        await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A preallocated image (metadata, falloc or full): the metadata clusters are written one at a time (a 1 TiB image
    /// has 128 MiB of L2 tables), the data clusters are left sparse, reserved (falloc) or zeroed (full).
    /// </summary>
    private static async Task CreatePreallocatedAsync(string path, long size, Qcow2CreateOptions o, CancellationToken cancellationToken)
    {
        long l1Entries = Check(size, o);
        var layout = Qcow2PreallocatedLayout.Plan(size, o, o.Preallocation);
        int cs = o.ClusterSize;
        var cluster = new byte[cs];
        using (var handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None, FileOptions.Asynchronous))
        {
            try
            {
                RandomAccess.SetLength(handle, layout.FileLength);
                async Task WriteAsync(long offset) => await RandomAccess.WriteAsync(handle, cluster, offset, cancellationToken).ConfigureAwait(false);

                Array.Clear(cluster);
                WriteHeaderCluster(cluster, size, o, l1Entries, layout.L1Offset, layout.RefcountTableOffset, layout.RefcountTableClusters);
                await WriteAsync(0).ConfigureAwait(false);
                for (int i = 0; i < layout.RefcountTableClusters; i++)
                {
                    layout.WriteRefcountTableCluster(i, cluster);
                    await WriteAsync(layout.RefcountTableOffset + ((long)i * cs)).ConfigureAwait(false);
                }

                foreach (var (index, offset) in layout.RefcountBlocks())
                {
                    layout.WriteRefcountBlock(index, cluster);
                    await WriteAsync(offset).ConfigureAwait(false);
                }

                // The L1 table as qemu-img writes it: its entries rounded up to 512 bytes, not the whole last cluster.
                long l1Bytes = Math.Max(512, ((l1Entries * 8) + 511) & ~511L);
                for (int i = 0; i < layout.L1Clusters; i++)
                {
                    layout.WriteL1Cluster(i, cluster);
                    int n = (int)Math.Min(cs, l1Bytes - ((long)i * cs));
                    await RandomAccess.WriteAsync(handle, cluster.AsMemory(0, n), layout.L1Offset + ((long)i * cs), cancellationToken).ConfigureAwait(false);
                }

                long table = 0;
                foreach (long offset in layout.L2TableOffsets)
                {
                    layout.WriteL2Table(table++, cluster);
                    await WriteAsync(offset).ConfigureAwait(false);
                }

                if (layout.TailZeros is long tail)
                {
                    Array.Clear(cluster);
                    await RandomAccess.WriteAsync(handle, cluster.AsMemory(0, (int)(cs - (tail % cs))), tail, cancellationToken).ConfigureAwait(false);
                }

                if (o.Preallocation is "falloc" or "full")
                {
                    foreach (var run in layout.Runs)
                    {
                        await Operations.FilePreallocation.ApplyAsync(handle, run.Host * cs, run.Count * cs, o.Preallocation, cancellationToken).ConfigureAwait(false);
                    }
                }

                RandomAccess.FlushToDisk(handle);
            }
            catch
            {
                handle.Dispose();
                File.Delete(path);
                throw;
            }
        }
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
        long l1Entries = Check(size, o);
        int clusterBits = BitOperations.Log2((uint)o.ClusterSize);
        long cs = o.ClusterSize;

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

        WriteHeaderCluster(image.AsSpan(0, (int)cs), size, o, l1Entries, l1Offset, tableOffset, tableClusters);
        for (long b = 0; b < blocks; b++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan((int)(tableOffset + (b * 8))), (ulong)(blocksOffset + (b * cs)));
        }

        for (long c = 0; c < totalClusters; c++)
        {
            long b = c / perBlock;
            RefcountBlock.Set(image.AsSpan((int)(blocksOffset + (b * cs)), (int)cs), order, c % perBlock, 1);
        }

        // qemu-img ends the file with the L1 table's last entry, not at a cluster boundary; the same bytes, the same length.
        return image[..(int)(l1Offset + (l1Entries * 8))];
    }

    /// <summary>Checks the options and size; returns the number of L1 entries the image needs.</summary>
    internal static long Check(long size, Qcow2CreateOptions o)
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

        return l1Entries;
    }

    /// <summary>Cluster 0: header, extensions, backing file name.</summary>
    internal static void WriteHeaderCluster(Span<byte> cluster, long size, Qcow2CreateOptions o, long l1Entries, long l1Offset, long tableOffset, long tableClusters)
    {
        int clusterBits = BitOperations.Log2((uint)o.ClusterSize);
        int order = BitOperations.Log2((uint)o.RefcountBits);
        long cs = o.ClusterSize;
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
            FeatureNames = v3 ? FeatureName.ForClusterSize(o.ClusterSize) : [],
        };
        if (!cluster0.TryWrite(cluster, out _))
        {
            // Small clusters: drop the optional feature-name table to make room.
            cluster0 = cluster0 with { FeatureNames = [] };
            if (!cluster0.TryWrite(cluster, out _))
            {
                throw new OptionException($"qcow2: the header and backing file name do not fit in one {cs}-byte cluster; use a larger cluster_size");
            }
        }
    }
}
