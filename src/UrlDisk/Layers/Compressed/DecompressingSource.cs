using System.IO.Compression;

namespace UrlDisk.Layers.Compressed;

/// <summary>Compressions recognised by their first bytes.</summary>
internal enum Compression
{
    Xz,
    Gzip,
    Zstd,
}

/// <summary>
/// The decompressed bytes of a compressed file, in order from byte 0, for a <see cref="FillCache"/>: the way
/// .gz, .zst and single-block .xz files are read, since they cannot be entered in the middle.
/// </summary>
internal sealed class DecompressingSource(IBlockDevice file, Compression compression, long? length) : ISequentialSource
{
    private const int ChunkSize = 1 << 20;

    public string Protocol => compression.ToString().ToLowerInvariant();

    public string DisplayName => file.Info.DisplayName ?? Protocol;

    public long? Length => length;

    public string SizeName => "index";

    public IReadOnlyDictionary<string, object?> Details { get; } = new Dictionary<string, object?> { ["compression"] = compression.ToString().ToLowerInvariant(), ["random-access"] = false };

    public async Task CopyToAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken cancellationToken)
    {
        var input = new BlockDeviceStream(file);
        await using var decoder = compression switch
        {
            Compression.Gzip => new GZipStream(input, CompressionMode.Decompress),
            Compression.Zstd => new ZstdSharp.DecompressionStream(input),
            _ => (Stream)new XzDecoderStream(input),
        };
        var chunk = new byte[ChunkSize];
        try
        {
            while (true)
            {
                int n = await decoder.ReadAtLeastAsync(chunk, chunk.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                if (n > 0)
                {
                    await sink(chunk.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                }

                if (n < chunk.Length)
                {
                    return;
                }
            }
        }
        catch (InvalidDataException e)
        {
            throw new ImageFormatException($"{Protocol}: the compressed data is corrupt: {e.Message}");
        }
        catch (ZstdSharp.ZstdException e)
        {
            throw new ImageFormatException($"zstd: the compressed data is corrupt: {e.Message}");
        }
    }

    public ValueTask DisposeAsync() => file.DisposeAsync();
}
