using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>
/// A file served the way a correct HTTP/1.1 server serves it: HEAD, GET, a single <c>Range: bytes=a-b</c>
/// (206 with Content-Range; 416 past the end), ETag and Last-Modified on every answer, and the
/// preconditions a careful client may send (If-Range: 200 with the whole file when the validator is stale;
/// If-Match: 412). Fault handlers build on it. The content and validator can be swapped to model an upload.
/// </summary>
public sealed class RangeFile
{
    private volatile Version _current;

    /// <summary>A file with validators <paramref name="etag"/> (null: no ETag) and <paramref name="lastModified"/> (null: a fixed date in 2024).</summary>
    public RangeFile(byte[] data, string? etag = "\"v1\"", DateTimeOffset? lastModified = null)
    {
        _current = new Version(data, etag, lastModified ?? new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero));
    }

    /// <summary>Send <c>Accept-Ranges: bytes</c> (a server may support ranges without saying so).</summary>
    public bool AdvertiseRanges { get; init; } = true;

    /// <summary>Honour Range at all; when false every GET is a 200 with the whole file.</summary>
    public bool HonourRanges { get; init; } = true;

    /// <summary>Honour If-Range; when false a stale validator is ignored and the range is sent anyway (the new bytes).</summary>
    public bool HonourIfRange { get; init; } = true;

    public byte[] Data => _current.Data;

    public string? ETag => _current.ETag;

    public DateTimeOffset? LastModified => _current.LastModified;

    /// <summary>The <c>Last-Modified</c> header value, or null when none is sent.</summary>
    public string? LastModifiedText => _current.LastModified?.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The file is replaced on the server (a new upload): new bytes, new validators (null: that header is no longer sent).</summary>
    public void Replace(byte[] data, string? etag, DateTimeOffset? lastModified) => _current = new Version(data, etag, lastModified);

    public async Task ServeAsync(HttpContext ctx)
    {
        var v = _current;
        var req = ctx.Request;
        var res = ctx.Response;
        if (!HttpMethods.IsGet(req.Method) && !HttpMethods.IsHead(req.Method))
        {
            res.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }

        if (v.ETag is not null)
        {
            res.Headers.ETag = v.ETag;
        }

        string? lastModified = v.LastModified?.ToString("R", CultureInfo.InvariantCulture);
        if (lastModified is not null)
        {
            res.Headers.LastModified = lastModified;
        }

        res.ContentType = "application/octet-stream";
        if (AdvertiseRanges)
        {
            res.Headers.AcceptRanges = "bytes";
        }

        string? ifMatch = req.Headers.IfMatch.Count > 0 ? req.Headers.IfMatch.ToString() : null;
        if (ifMatch is not null && ifMatch != "*" && (v.ETag is null || !ifMatch.Split(',').Select(s => s.Trim()).Contains(v.ETag)))
        {
            res.StatusCode = StatusCodes.Status412PreconditionFailed;
            return;
        }

        bool rangeAllowed = HonourRanges && HttpMethods.IsGet(req.Method);
        string? ifRange = req.Headers.IfRange.Count > 0 ? req.Headers.IfRange.ToString() : null;
        if (HonourIfRange && ifRange is not null && ifRange != v.ETag && ifRange != lastModified)
        {
            rangeAllowed = false; // stale validator: the whole current file, as RFC 9110 says
        }

        string? range = req.Headers.Range.Count > 0 ? req.Headers.Range.ToString() : null;
        if (rangeAllowed && range is not null && TryParseRange(range, v.Data.Length, out long first, out long last, out bool satisfiable))
        {
            if (!satisfiable)
            {
                res.StatusCode = StatusCodes.Status416RangeNotSatisfiable;
                res.Headers.ContentRange = $"bytes */{v.Data.Length}";
                return;
            }

            res.StatusCode = StatusCodes.Status206PartialContent;
            res.Headers.ContentRange = $"bytes {first}-{last}/{v.Data.Length}";
            res.ContentLength = last - first + 1;
            await res.Body.WriteAsync(v.Data.AsMemory((int)first, (int)(last - first + 1)), ctx.RequestAborted);
            return;
        }

        res.StatusCode = StatusCodes.Status200OK;
        res.ContentLength = v.Data.Length;
        if (HttpMethods.IsGet(req.Method))
        {
            await res.Body.WriteAsync(v.Data, ctx.RequestAborted);
        }
    }

    /// <summary>Parses a single <c>bytes=a-b</c>, <c>bytes=a-</c> or <c>bytes=-n</c>; false means ignore the header.</summary>
    public static bool TryParseRange(string header, long length, out long first, out long last, out bool satisfiable)
    {
        first = last = 0;
        satisfiable = false;
        if (!header.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase) || header.Contains(','))
        {
            return false;
        }

        var spec = header[6..].Trim();
        int dash = spec.IndexOf('-');
        if (dash < 0)
        {
            return false;
        }

        string a = spec[..dash].Trim();
        string b = spec[(dash + 1)..].Trim();
        if (a.Length == 0)
        {
            if (!long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out long suffix) || suffix == 0)
            {
                return false;
            }

            first = Math.Max(0, length - suffix);
            last = length - 1;
            satisfiable = length > 0;
            return true;
        }

        if (!long.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out first))
        {
            return false;
        }

        if (b.Length == 0)
        {
            last = length - 1;
        }
        else if (!long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out last) || last < first)
        {
            return false;
        }

        last = Math.Min(last, length - 1);
        satisfiable = first < length;
        return true;
    }

    private sealed record Version(byte[] Data, string? ETag, DateTimeOffset? LastModified);
}
