using System.Buffers.Binary;
using UrlDisk.Layers.DiskCache;

namespace UrlDisk.Tests.Layers;

public class DiskCacheIndexTests
{
    private static readonly DiskCacheHeader Header = new("https://example.com/images/disk.qcow2?x=1", 5_000_000, "etag=\"abc\";last-modified=1700000000", 256 * 1024);

    private static byte[] Written(DiskCacheHeader header)
    {
        var bytes = new byte[DiskCacheIndex.HeaderSize(header)];
        Assert.Equal(bytes.Length, DiskCacheIndex.WriteHeader(header, bytes));
        return bytes;
    }

    [Fact]
    public void A_header_reads_back_as_written_and_is_16_byte_aligned()
    {
        var bytes = Written(Header);

        Assert.True(DiskCacheIndex.TryReadHeader(bytes, out var read, out int size, out string? problem), problem);
        Assert.Equal(Header, read);
        Assert.Equal(bytes.Length, size);
        Assert.Equal(0, size % 16);
        Assert.Equal("URLDCIDX"u8.ToArray(), bytes[..8]);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
        Assert.Equal(20L, read!.BlockCount);
    }

    [Fact]
    public void Records_follow_the_header_and_the_header_reads_with_them()
    {
        var bytes = Written(Header).Concat(new byte[32]).ToArray();
        DiskCacheIndex.WriteRecord(7, 0xDEADBEEF, bytes.AsSpan(bytes.Length - 32));

        Assert.True(DiskCacheIndex.TryReadHeader(bytes, out _, out int size, out _));
        Assert.True(DiskCacheIndex.TryReadRecord(bytes.AsSpan(size, 16), Header.BlockCount, out long block, out uint crc));
        Assert.Equal((7L, 0xDEADBEEFu), (block, crc));

        // The zeros after it are a torn append: they claim nothing.
        Assert.False(DiskCacheIndex.TryReadRecord(bytes.AsSpan(size + 16, 16), Header.BlockCount, out _, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(9)]
    [InlineData(24)]
    [InlineData(40)]
    [InlineData(70)]
    public void Any_flipped_header_byte_refuses_the_header(int at)
    {
        var bytes = Written(Header);
        bytes[at] ^= 0x01;

        Assert.False(DiskCacheIndex.TryReadHeader(bytes, out var header, out _, out string? problem));
        Assert.Null(header);
        Assert.False(string.IsNullOrEmpty(problem));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(39)]
    [InlineData(100)]
    public void A_truncated_header_is_refused_and_says_so(int length)
    {
        var bytes = Written(Header);

        Assert.False(DiskCacheIndex.TryReadHeader(bytes.AsSpan(0, Math.Min(length, bytes.Length - 1)), out _, out _, out string? problem));
        Assert.Contains("shorter", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_header_padded_past_the_next_16_bytes_is_refused_so_every_header_writes_back_the_same()
    {
        var bytes = Written(Header);
        var padded = new byte[bytes.Length + 16];
        bytes.AsSpan(0, bytes.Length - 4).CopyTo(padded);
        BinaryPrimitives.WriteUInt32LittleEndian(padded.AsSpan(12), (uint)padded.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(padded.AsSpan(padded.Length - 4), Crc32C.Compute(padded.AsSpan(0, padded.Length - 4)));

        Assert.False(DiskCacheIndex.TryReadHeader(padded, out _, out _, out string? problem));
        Assert.Contains("contents take", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Another_version_is_refused_by_name()
    {
        var bytes = Written(Header);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 2);

        Assert.False(DiskCacheIndex.TryReadHeader(bytes, out _, out _, out string? problem));
        Assert.Contains("version 2", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_record_with_a_flipped_bit_or_a_block_past_the_end_claims_nothing()
    {
        var record = new byte[16];
        DiskCacheIndex.WriteRecord(3, 42, record);
        Assert.True(DiskCacheIndex.TryReadRecord(record, 4, out _, out _));
        Assert.False(DiskCacheIndex.TryReadRecord(record, 3, out _, out _));

        record[9] ^= 0x80;
        Assert.False(DiskCacheIndex.TryReadRecord(record, 4, out _, out _));
    }

    [Fact]
    public void Crc32C_matches_the_standard_check_value()
    {
        // The CRC-32C check value of "123456789" (RFC 3720 and every CRC catalogue).
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
    }
}
