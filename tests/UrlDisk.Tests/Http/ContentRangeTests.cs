using UrlDisk.Sources.Http;

namespace UrlDisk.Tests.Http;

public class ContentRangeTests
{
    [Theory]
    [InlineData("bytes 0-0/1000", 0L, 0L, 1000L)]
    [InlineData("bytes 100-199/1000", 100L, 199L, 1000L)]
    [InlineData("BYTES 5-9/*", 5L, 9L, null)]
    [InlineData("bytes  0-511/512", 0L, 511L, 512L)]
    public void Parses_ranges(string text, long first, long last, long? total)
    {
        Assert.True(ContentRange.TryParse(text, out var r));
        Assert.Equal(first, r.First);
        Assert.Equal(last, r.Last);
        Assert.Equal(total, r.Total);
    }

    [Fact]
    public void Parses_unsatisfied_range() => Assert.True(ContentRange.TryParse("bytes */4096", out var r) && r.Total == 4096 && r.First is null);

    [Theory]
    [InlineData("")]
    [InlineData("bytes 5-4/10")]
    [InlineData("bytes 0-10/10")]
    [InlineData("items 0-1/2")]
    [InlineData("bytes 0-1")]
    [InlineData("bytes -1-2/3")]
    [InlineData("bytes */*")]
    public void Rejects_malformed(string text) => Assert.False(ContentRange.TryParse(text, out _));
}
