using UrlDisk.Formats.Vhdx;
using UrlDisk.Formats.Vpc;
using UrlDisk.Fuzz;
using UrlDisk.Layers.Compressed;
using UrlDisk.Opening;

namespace UrlDisk.Tests.Fuzz;

/// <summary>The vpc, vhdx and xz seeds are valid inputs, so mutations start from images that open (not from rejects).</summary>
public class FormatSeedTests
{
    private static IEnumerable<byte[]> Seeds(string target)
    {
        string dir = Path.Combine(Corpus.FindRoot(AppContext.BaseDirectory)!, target);
        return Directory.GetFiles(dir, "seed-*").Select(File.ReadAllBytes);
    }

    [Fact]
    public async Task Vpc_and_vhdx_seeds_open_and_read()
    {
        foreach (var seed in Seeds("vpc"))
        {
            await using var image = await VpcImage.OpenAsync(new SeedFile(SparseSeed(seed)), null, new OpenContext(), CancellationToken.None);
            var head = new byte[4096];
            await image.ReadAsync(0, head);
            Assert.All(head, b => Assert.Equal(0x5a, b));
        }

        foreach (var seed in Seeds("vhdx"))
        {
            await using var image = await VhdxImage.OpenAsync(new SeedFile(SparseSeed(seed)), new OpenContext(), CancellationToken.None);
            var head = new byte[4096];
            await image.ReadAsync(0, head);
            Assert.All(head, b => Assert.Equal(0x5a, b));
        }
    }

    [Fact]
    public async Task Xz_seeds_have_their_blocks_found()
    {
        foreach (var seed in Seeds("xz-index"))
        {
            var blocks = await XzLayout.ReadAsync(new SeedFile(seed), CancellationToken.None);
            Assert.Equal(seed.Length == 596 ? 400 * 1024 : 200 * 1024, blocks[^1].UncompressedEnd);
        }
    }

    /// <summary>The harnesses' sparse form (u32 size, then u32 offset / u16 length / bytes records).</summary>
    private static byte[] SparseSeed(byte[] input)
    {
        var file = new byte[BitConverter.ToUInt32(input, 0)];
        for (int pos = 4; pos + 6 <= input.Length;)
        {
            int offset = (int)BitConverter.ToUInt32(input, pos);
            int length = BitConverter.ToUInt16(input, pos + 4);
            input.AsSpan(pos + 6, length).CopyTo(file.AsSpan(offset));
            pos += 6 + length;
        }

        return file;
    }

    private sealed class SeedFile(byte[] data) : BlockDevice
    {
        public override long Length => data.Length;

        public override BlockDeviceInfo Info { get; } = new() { Driver = "file" };

        protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        {
            data.AsSpan((int)offset, buffer.Length).CopyTo(buffer.Span);
            return ValueTask.CompletedTask;
        }
    }
}
