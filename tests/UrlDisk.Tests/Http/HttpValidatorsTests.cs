using System.Net.Http.Headers;
using UrlDisk.Sources.Http;

namespace UrlDisk.Tests.Http;

public class HttpValidatorsTests
{
    private static readonly DateTimeOffset s_t1 = new(2024, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private static readonly DateTimeOffset s_t2 = s_t1.AddSeconds(1);

    private static HttpValidators V(string? etag, DateTimeOffset? modified) => new(etag is null ? null : EntityTagHeaderValue.Parse(etag), modified);

    [Theory]
    [InlineData("\"a\"", true, "\"a\"", true)]
    [InlineData("W/\"a\"", true, "W/\"a\"", true)]
    [InlineData(null, true, null, true)]
    [InlineData("\"a\"", false, "\"a\"", false)]
    [InlineData(null, false, "\"new\"", true)] // validators that appear are no evidence of a change
    public void The_same_validators_are_no_change(string? etag, bool modified, string? etagNow, bool modifiedNow)
        => Assert.Null(V(etag, modified ? s_t1 : null).DifferenceTo(V(etagNow, modifiedNow ? s_t1 : null)));

    [Theory]
    [InlineData("\"a\"", "\"b\"", "ETag is now \"b\"")]
    [InlineData("W/\"a\"", "W/\"b\"", "ETag is now W/\"b\"")]
    [InlineData("W/\"a\"", "\"a\"", "ETag is now \"a\"")]
    [InlineData("\"a\"", null, "no longer sent")]
    [InlineData("W/\"a\"", null, "no longer sent")]
    public void A_changed_or_vanished_etag_is_a_change(string etag, string? etagNow, string expected)
    {
        string? how = V(etag, s_t1).DifferenceTo(V(etagNow, s_t1));
        Assert.NotNull(how);
        Assert.Contains(expected, how, StringComparison.Ordinal);
    }

    [Fact]
    public void A_changed_or_vanished_last_modified_is_a_change()
    {
        Assert.Contains("modified at", V(null, s_t1).DifferenceTo(V(null, s_t2)), StringComparison.Ordinal);
        Assert.Contains("no longer sent", V(null, s_t1).DifferenceTo(V(null, null)), StringComparison.Ordinal);
        Assert.Contains("modified at", V("\"a\"", s_t1).DifferenceTo(V("\"a\"", s_t2)), StringComparison.Ordinal);
    }

    [Fact]
    public void If_range_uses_the_strong_etag_else_the_date_never_a_weak_etag()
    {
        Assert.Equal("\"a\"", V("\"a\"", s_t1).IfRange!.EntityTag!.ToString());
        Assert.Equal(s_t1, V("W/\"a\"", s_t1).IfRange!.Date);
        Assert.Null(V("W/\"a\"", null).IfRange);
        Assert.Null(V(null, null).IfRange);
    }

    [Fact]
    public void Validators_are_read_from_a_response()
    {
        using var response = new HttpResponseMessage { Content = new ByteArrayContent([]) };
        response.Headers.ETag = EntityTagHeaderValue.Parse("W/\"x\"");
        response.Content.Headers.LastModified = s_t1;
        var v = HttpValidators.Of(response);
        Assert.Equal(V("W/\"x\"", s_t1), v);
    }
}
