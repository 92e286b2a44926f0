using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace UrlDisk.Formats.Vmdk;

/// <summary>
/// Writes a streamOptimized VMDK in VMware's stream layout, strictly front to back: header (grain directory at
/// the end), descriptor, zlib grains behind grain markers in ascending order (all-zero grains omitted), then a
/// marker and table for each grain table in use, the grain directory, the footer (the header with the directory's
/// real place) and the end-of-stream marker. Written under a temporary name and renamed when complete.
/// </summary>
internal static class VmdkStreamWriter
{
    private const int GrainSectors = 128;
    private const int GrainBytes = GrainSectors * 512;
    private const int GtesPerGt = 512;
    private const int DescriptorSectors = 20;
    private const int OverHeadSectors = 128;
    private const int ReadChunk = 16 * GrainBytes;
    private const int ReadsAhead = 4;
    private static readonly byte[] MarkerSpace = new byte[VmdkMarker.GrainMarkerHeader];

    public static async Task WriteAsync(IBlockDevice source, string path, VmdkCreateOptions options, Action<long>? progress, CancellationToken cancellationToken)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(dir))
        {
            throw new UrlDiskException($"cannot create '{path}': directory '{dir}' does not exist");
        }

        string temp = Path.Combine(dir, $".{Path.GetFileName(path)}.urldisk-{Guid.NewGuid():N}.part");
        try
        {
            await using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                await WriteStreamAsync(source, output, Path.GetFileName(path), options, progress, cancellationToken).ConfigureAwait(false);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    private static async Task WriteStreamAsync(IBlockDevice source, Stream output, string fileName, VmdkCreateOptions options, Action<long>? progress, CancellationToken cancellationToken)
    {
        long capacity = (source.Length + 511) / 512;
        long grains = (capacity + GrainSectors - 1) / GrainSectors;
        long tables = (grains + GtesPerGt - 1) / GtesPerGt;
        if (tables > int.MaxValue / GtesPerGt)
        {
            throw new UrlDiskException($"vmdk: {source.Length} bytes is too large for a streamOptimized image");
        }

        var header = new VmdkSparseHeader
        {
            Version = 3,
            Flags = VmdkSparseHeader.FlagNewlineTest | VmdkSparseHeader.FlagCompressed | VmdkSparseHeader.FlagMarkers,
            Capacity = (ulong)capacity,
            GrainSize = GrainSectors,
            DescriptorOffset = 1,
            DescriptorSize = DescriptorSectors,
            NumGtesPerGt = GtesPerGt,
            GdOffset = VmdkSparseHeader.GdAtEnd,
            OverHead = OverHeadSectors,
            CompressAlgorithm = VmdkSparseHeader.CompressDeflate,
        };
        var head = new byte[OverHeadSectors * 512];
        header.Write(head);
        var descriptor = Encoding.UTF8.GetBytes(Descriptor(capacity, fileName, options));
        if (descriptor.Length > DescriptorSectors * 512)
        {
            throw new UrlDiskException($"vmdk: the descriptor ({descriptor.Length} bytes) does not fit its {DescriptorSectors} sectors; use a shorter file name");
        }

        descriptor.CopyTo(head.AsSpan(512));
        await output.WriteAsync(head, cancellationToken).ConfigureAwait(false);
        long sector = OverHeadSectors;

        var gt = new uint[GtesPerGt];
        long gtIndex = 0;
        var gd = new uint[tables];
        var marker = new byte[512];
        var table = new byte[GtesPerGt * 4];

        // A grain table follows the grains it covers, so only one is held at a time.
        async Task FlushTableAsync()
        {
            if (gt.AsSpan().ContainsAnyExcept(0u))
            {
                VmdkMarker.WriteMetadataMarker(marker, (ulong)(table.Length / 512), VmdkMarker.TypeGrainTable);
                await output.WriteAsync(marker, cancellationToken).ConfigureAwait(false);
                for (int i = 0; i < GtesPerGt; i++)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(table.AsSpan(i * 4), gt[i]);
                }

                gd[gtIndex] = (uint)(sector + 1);
                await output.WriteAsync(table, cancellationToken).ConfigureAwait(false);
                sector += 1 + (table.Length / 512);
                Array.Clear(gt);
            }
        }

        var pending = new Queue<Task<byte[]>>();
        long nextRead = 0;
        var compressed = new MemoryStream();
        for (long chunkStart = 0; chunkStart < source.Length; chunkStart += ReadChunk)
        {
            while (pending.Count < ReadsAhead && nextRead < source.Length)
            {
                pending.Enqueue(ReadChunkAsync(source, nextRead, cancellationToken));
                nextRead += ReadChunk;
            }

            var chunk = await pending.Dequeue().ConfigureAwait(false);
            for (int at = 0; at < chunk.Length; at += GrainBytes)
            {
                var grain = chunk.AsMemory(at, Math.Min(GrainBytes, chunk.Length - at));
                if (!grain.Span.ContainsAnyExcept((byte)0))
                {
                    continue;
                }

                long index = (chunkStart + at) / GrainBytes;
                while (index / GtesPerGt > gtIndex)
                {
                    await FlushTableAsync().ConfigureAwait(false);
                    gtIndex++;
                }

                compressed.SetLength(0);
                compressed.Write(MarkerSpace);
                using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
                {
                    z.Write(grain.Span);
                    if (grain.Length < GrainBytes)
                    {
                        z.Write(new byte[GrainBytes - grain.Length]); // the last grain is whole, padded with zeros
                    }
                }

                var bytes = compressed.GetBuffer();
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)(index * GrainSectors));
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), (uint)(compressed.Length - VmdkMarker.GrainMarkerHeader));
                int padded = (int)((compressed.Length + 511) & ~511L);
                compressed.SetLength(padded); // zero-fills the tail
                if (sector > uint.MaxValue)
                {
                    throw new UrlDiskException("vmdk: the compressed image outgrows the 2 TiB a grain table entry can address");
                }

                gt[index % GtesPerGt] = (uint)sector;
                await output.WriteAsync(compressed.GetBuffer().AsMemory(0, padded), cancellationToken).ConfigureAwait(false);
                sector += padded / 512;
            }

            progress?.Invoke(Math.Min(source.Length, chunkStart + ReadChunk));
        }

        if (gtIndex < tables)
        {
            await FlushTableAsync().ConfigureAwait(false);
        }

        int gdSectors = (int)((tables * 4 + 511) / 512);
        var gdBytes = new byte[gdSectors * 512];
        for (int i = 0; i < gd.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(gdBytes.AsSpan(i * 4), gd[i]);
        }

        VmdkMarker.WriteMetadataMarker(marker, (ulong)gdSectors, VmdkMarker.TypeGrainDirectory);
        await output.WriteAsync(marker, cancellationToken).ConfigureAwait(false);
        long gdSector = sector + 1;
        await output.WriteAsync(gdBytes, cancellationToken).ConfigureAwait(false);

        VmdkMarker.WriteMetadataMarker(marker, 1, VmdkMarker.TypeFooter);
        await output.WriteAsync(marker, cancellationToken).ConfigureAwait(false);
        var footer = new byte[512];
        (header with { GdOffset = (ulong)gdSector }).Write(footer);
        await output.WriteAsync(footer, cancellationToken).ConfigureAwait(false);
        await output.WriteAsync(new byte[512], cancellationToken).ConfigureAwait(false); // end of stream
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads a chunk; holes and zero extents (as the source reports them) are not read.</summary>
    private static async Task<byte[]> ReadChunkAsync(IBlockDevice source, long offset, CancellationToken cancellationToken)
    {
        var chunk = new byte[(int)Math.Min(ReadChunk, source.Length - offset)];
        long pos = offset;
        long end = offset + chunk.Length;
        while (pos < end)
        {
            var extents = await source.GetExtentsAsync(pos, end - pos, cancellationToken).ConfigureAwait(false);
            if (extents.Count == 0)
            {
                await source.ReadAsync(pos, chunk.AsMemory((int)(pos - offset)), cancellationToken).ConfigureAwait(false);
                break;
            }

            foreach (var e in extents)
            {
                if (!e.IsZero)
                {
                    await source.ReadAsync(e.Offset, chunk.AsMemory((int)(e.Offset - offset), (int)e.Length), cancellationToken).ConfigureAwait(false);
                }

                pos = e.End;
            }
        }

        return chunk;
    }

    private static string Descriptor(long capacity, string fileName, VmdkCreateOptions options)
    {
        int heads = options.AdapterType == "ide" ? 16 : 255;
        long cylinders = Math.Min((capacity + (heads * 63) - 1) / (heads * 63), options.AdapterType == "ide" ? 16383 : 65535);
        uint cid = (uint)Random.Shared.NextInt64(0, 0xFFFFFFFF);
        var sb = new StringBuilder();
        sb.Append("# Disk DescriptorFile\n");
        sb.Append("version=1\n");
        sb.Append(CultureInfo.InvariantCulture, $"CID={cid:x8}\n");
        sb.Append("parentCID=ffffffff\n");
        sb.Append("createType=\"streamOptimized\"\n\n");
        sb.Append("# Extent description\n");
        sb.Append(CultureInfo.InvariantCulture, $"RW {capacity} SPARSE \"{fileName.Replace("\"", "", StringComparison.Ordinal)}\"\n\n");
        sb.Append("# The Disk Data Base\n#DDB\n\n");
        sb.Append(CultureInfo.InvariantCulture, $"ddb.virtualHWVersion = \"{options.HardwareVersion}\"\n");
        sb.Append(CultureInfo.InvariantCulture, $"ddb.geometry.cylinders = \"{cylinders}\"\n");
        sb.Append(CultureInfo.InvariantCulture, $"ddb.geometry.heads = \"{heads}\"\n");
        sb.Append("ddb.geometry.sectors = \"63\"\n");
        sb.Append(CultureInfo.InvariantCulture, $"ddb.adapterType = \"{options.AdapterType}\"\n");
        sb.Append(CultureInfo.InvariantCulture, $"ddb.toolsVersion = \"{options.ToolsVersion}\"\n");
        return sb.ToString();
    }
}
