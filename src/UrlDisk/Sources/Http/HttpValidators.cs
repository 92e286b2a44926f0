using System.Globalization;
using System.Net.Http.Headers;

namespace UrlDisk.Sources.Http;

/// <summary>
/// A response's validators (RFC 9110 §8.8): the ETag, strong or weak, and Last-Modified. Whatever validators the file
/// had at open must come back unchanged on every later answer: a changed or vanished one means the file changed,
/// which is the only protection against a server that ignores <c>If-Range</c>.
/// </summary>
internal readonly record struct HttpValidators(EntityTagHeaderValue? ETag, DateTimeOffset? LastModified)
{
    public static HttpValidators Of(HttpResponseMessage response) => new(response.Headers.ETag, response.Content.Headers.LastModified);

    /// <summary>The ETag when it is strong; a weak one may not be sent in <c>If-Range</c> (RFC 9110 §13.1.5).</summary>
    public EntityTagHeaderValue? StrongETag => ETag is { IsWeak: false } e ? e : null;

    /// <summary>
    /// <c>If-Range</c> must carry a strong validator: the strong ETag, else Last-Modified (the server decides whether
    /// that date is strong enough); null when the file has neither.
    /// </summary>
    public RangeConditionHeaderValue? IfRange => StrongETag is { } e ? new(e) : LastModified is { } lm ? new(lm) : null;

    /// <summary>Null when <paramref name="now"/> carries every validator this one has, with the same value; otherwise how it differs.</summary>
    public string? DifferenceTo(HttpValidators now)
    {
        if (ETag is not null)
        {
            if (now.ETag is null)
            {
                return $"its ETag {ETag} is no longer sent";
            }

            if (!Equals(ETag, now.ETag))
            {
                return $"its ETag is now {now.ETag}, not {ETag}";
            }
        }

        if (LastModified is { } opened)
        {
            if (now.LastModified is not { } modified)
            {
                return $"its Last-Modified {Format(opened)} is no longer sent";
            }

            if (modified != opened)
            {
                return $"it was modified at {Format(modified)}, not {Format(opened)}";
            }
        }

        return null;
    }

    private static string Format(DateTimeOffset t) => t.ToString("R", CultureInfo.InvariantCulture);
}
