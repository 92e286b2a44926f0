using System.IO.Compression;

namespace UrlDisk.Formats.Qcow2;

/// <summary>qcow2 compressed clusters: raw deflate (type 0) or zstd (type 1), decompressed to exactly one cluster.</summary>
internal static class ClusterCompression
{
    public const byte Zlib = 0;
    public const byte Zstd = 1;

    public static string Name(byte type) => type switch { Zlib => "zlib", Zstd => "zstd", _ => $"unknown ({type})" };

    /// <summary>
    /// Fills <paramref name="cluster"/> from <paramref name="compressed"/>, which may carry trailing sector padding.
    /// Returns false when the data does not decompress to a full cluster.
    /// </summary>
    public static bool TryDecompress(byte type, ReadOnlyMemory<byte> compressed, Span<byte> cluster)
    {
        try
        {
            using var input = new ReadOnlyMemoryStream(compressed);
            using Stream stream = type == Zstd ? new ZstdSharp.DecompressionStream(input, leaveOpen: true) : new DeflateStream(input, CompressionMode.Decompress, leaveOpen: true);
            int done = 0;
            while (done < cluster.Length)
            {
                int n = stream.Read(cluster[done..]);
                if (n == 0)
                {
                    return false;
                }

                done += n;
            }

            return true;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ZstdSharp.ZstdException or InvalidOperationException or ArgumentException)
        {
            return false;
        }
    }

    /// <summary>Compresses one cluster; null when the result would not be smaller than the cluster.</summary>
    public static byte[]? Compress(byte type, ReadOnlySpan<byte> cluster)
    {
        byte[] result;
        if (type == Zstd)
        {
            using var compressor = new ZstdSharp.Compressor();
            result = compressor.Wrap(cluster).ToArray();
        }
        else
        {
            using var output = new MemoryStream();
            using (var deflate = new DeflateStream(output, CompressionLevel.Optimal, leaveOpen: true))
            {
                deflate.Write(cluster);
            }

            result = output.ToArray();
        }

        return result.Length < cluster.Length ? result : null;
    }

    /// <summary>A read-only stream over memory (no copy).</summary>
    private sealed class ReadOnlyMemoryStream(ReadOnlyMemory<byte> data) : Stream
    {
        private int _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => data.Length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(buffer.Length, data.Length - _position);
            data.Span.Slice(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
