using System.Buffers.Binary;
using UrlDisk.Layers.Prefetch;

namespace UrlDisk.Tests.Layers.Prefetch;

public class BootProfileCodecTests
{
    private static readonly string Key = new('a', 64);

    private static BootProfile Sample() => new(Key, 10 << 20, [new(4096, 8192), new(0, 512), new((10 << 20) - 100, 100)]);

    [Fact]
    public void A_profile_reads_back_as_written()
    {
        var bytes = Sample().Encode();

        Assert.True(BootProfile.TryRead(bytes, out var back, out string error, out _), error);
        Assert.Equal(Key, back!.IdentityKey);
        Assert.Equal(10L << 20, back.ImageLength);
        Assert.Equal(Sample().Ranges, back.Ranges);
        Assert.Equal(56 + (3 * 16) + 32, bytes.Length);
    }

    [Fact]
    public void An_empty_profile_is_valid()
    {
        Assert.True(BootProfile.TryRead(new BootProfile(Key, 0, []).Encode(), out var back, out _, out _));
        Assert.Empty(back!.Ranges);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(20)]
    [InlineData(56)]
    [InlineData(100)]
    public void A_truncated_profile_is_refused_as_damaged(int keep)
    {
        var bytes = Sample().Encode()[..keep];

        Assert.False(BootProfile.TryRead(bytes, out var p, out string error, out bool otherVersion));
        Assert.Null(p);
        Assert.False(otherVersion);
        Assert.NotEmpty(error);
    }

    [Fact]
    public void A_flipped_bit_fails_the_checksum()
    {
        var bytes = Sample().Encode();
        bytes[70] ^= 1;

        Assert.False(BootProfile.TryRead(bytes, out _, out string error, out _));
        Assert.Contains("checksum", error);
    }

    [Fact]
    public void Another_format_version_is_reported_as_such()
    {
        var bytes = Sample().Encode();
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(8), 2);

        Assert.False(BootProfile.TryRead(bytes, out _, out string error, out bool otherVersion));
        Assert.True(otherVersion);
        Assert.Contains("version 2", error);
    }

    [Fact]
    public void A_range_outside_the_image_is_refused_even_with_a_good_checksum()
    {
        var bytes = new BootProfile(Key, 1000, [new(900, 200)]).Encode();

        Assert.False(BootProfile.TryRead(bytes, out _, out string error, out _));
        Assert.Contains("range 0", error);
    }

    [Fact]
    public void A_count_that_does_not_match_the_size_is_refused()
    {
        var bytes = Sample().Encode();
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(12), uint.MaxValue);

        Assert.False(BootProfile.TryRead(bytes, out _, out string error, out _));
        Assert.Contains("truncated or damaged", error);
    }
}
