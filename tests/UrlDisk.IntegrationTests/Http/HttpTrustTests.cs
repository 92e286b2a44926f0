using System.IO.Compression;
using Microsoft.AspNetCore.Http;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>
/// What the http source must never trust (issue #9): compressed ranges, validators that change or vanish without
/// If-Range support, servers that never answer, a cookie on another origin; and a link that keeps cutting bodies,
/// which must still give exact bytes.
/// </summary>
public sealed class HttpTrustTests : IAsyncLifetime
{
    private const int Size = (3 << 20) + 4096;
    private const string Password = "Pw-Secret-7731";
    private const string CookieValue = "Cookie-Secret-5519";
    private static readonly DateTimeOffset s_opened = new(2024, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private FaultHttpServer _server = null!;

    public async Task InitializeAsync() => _server = await FaultHttpServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static CancellationTokenSource Limit() => new(DeviceReads.Limit);

    private static bool IsRangeGet(HttpContext ctx) => HttpMethods.IsGet(ctx.Request.Method) && ctx.Request.Headers.Range.Count > 0;

    private static string Spec(string url, params (string Key, object Value)[] options) => HttpSpecs.JsonDotted("http", url, options);

    /// <summary>A 206 for the asked range whose body is gzip-compressed, as Apache's mod_deflate sends when it is not told otherwise.</summary>
    private static async Task SendGzippedRangeAsync(HttpContext ctx, RangeFile file)
    {
        Assert.True(RangeFile.TryParseRange(ctx.Request.Headers.Range.ToString(), file.Data.Length, out long first, out long last, out _));
        ctx.Response.StatusCode = 206;
        ctx.Response.Headers.ETag = file.ETag;
        ctx.Response.Headers.LastModified = file.LastModifiedText;
        ctx.Response.Headers.ContentRange = $"bytes {first}-{last}/{file.Data.Length}";
        ctx.Response.Headers.ContentEncoding = "gzip";
        using var compressed = new MemoryStream();
        await using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            await gzip.WriteAsync(file.Data.AsMemory((int)first, (int)(last - first + 1)), ctx.RequestAborted);
        }

        await ctx.Response.Body.WriteAsync(compressed.ToArray(), ctx.RequestAborted);
    }

    private static Task NeverAnswerAsync(HttpContext ctx) => Task.Delay(Timeout.Infinite, ctx.RequestAborted);

    // Item 1: a range must be the disk's bytes, never a compressed representation of them.

    [Fact]
    public async Task Every_request_asks_for_identity_so_a_gzip_capable_server_sends_the_disk_bytes()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 301));
        _server.Map("/gzip-capable.img", async (ctx, n) =>
        {
            // No Accept-Encoding means any coding is acceptable (RFC 9110 §12.5.3); this server then compresses.
            string? accept = ctx.Request.Headers.AcceptEncoding.Count > 0 ? ctx.Request.Headers.AcceptEncoding.ToString() : null;
            if (IsRangeGet(ctx) && (accept is null || accept.Contains("gzip", StringComparison.OrdinalIgnoreCase) || accept.Contains('*', StringComparison.Ordinal)))
            {
                await SendGzippedRangeAsync(ctx, file);
                return;
            }

            await file.ServeAsync(ctx);
        });
        using var cts = Limit();
        await using (var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/gzip-capable.img")), cts.Token))
        {
            await DeviceReads.AssertRandomReadsAsync(device, file.Data, count: 6, seed: 302, cts.Token);
        }

        var requests = _server.Requests("/gzip-capable.img");
        Assert.NotEmpty(requests);
        Assert.All(requests, r => Assert.Equal("identity", r.Header("Accept-Encoding")));
    }

    [Fact]
    public async Task A_gzip_encoded_range_is_refused_naming_the_encoding()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 303));
        _server.Map("/gzip-always.img", async (ctx, n) =>
        {
            if (IsRangeGet(ctx))
            {
                await SendGzippedRangeAsync(ctx, file);
                return;
            }

            await file.ServeAsync(ctx);
        });
        using var cts = Limit();
        await using var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/gzip-always.img"), ("readahead", "64k")), cts.Token);
        var buffer = new byte[4096];
        var e = await Assert.ThrowsAnyAsync<SourceException>(() => device.ReadAsync(1 << 20, buffer, cts.Token).AsTask());
        Assert.Contains("Content-Encoding", e.Message, StringComparison.Ordinal);
        Assert.Contains("gzip", e.Message, StringComparison.Ordinal);
        Assert.False(e.IsTransient, "a compressed answer will not get better by asking again");
    }

    // Item 2: a server that ignores If-Range must not mix old and new bytes, whatever validator it has.

    public static TheoryData<string, string?, DateTimeOffset?, string?, DateTimeOffset?> ChangedValidators => new()
    {
        // case, ETag at open, Last-Modified at open, ETag after the upload, Last-Modified after the upload
        { "only Last-Modified, which changes", null, s_opened, null, s_opened.AddMinutes(5) },
        { "a weak ETag, which changes", "W/\"w1\"", s_opened, "W/\"w2\"", s_opened },
        { "a strong ETag, which vanishes", "\"s1\"", s_opened, null, s_opened },
        { "a weak ETag, which vanishes", "W/\"w1\"", null, null, null },
        { "only Last-Modified, which vanishes", null, s_opened, null, null },
    };

    [Theory]
    [MemberData(nameof(ChangedValidators))]
    public async Task A_file_replaced_on_a_server_without_if_range_is_reported_not_mixed(string kase, string? etag1, DateTimeOffset? modified1, string? etag2, DateTimeOffset? modified2)
    {
        var v1 = ImageFactory.Random(Size, seed: 304);
        var file = new RangeFile(v1, etag1, modified1) { HonourIfRange = false };
        if (modified1 is null)
        {
            file.Replace(v1, etag1, null); // no Last-Modified at all (the constructor's null means a default date)
        }

        _server.Map("/replaced.img", file);
        using var cts = Limit();
        await using var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/replaced.img"), ("readahead", "64k")), cts.Token);
        var first = new byte[4096];
        await device.ReadAsync(0, first, cts.Token);
        ImageFactory.AssertSameBytes(v1.AsSpan(0, 4096), first, $"{kase}: read before the upload");

        // A new upload of the same size; the server still answers 206 to every range (it ignores If-Range).
        file.Replace(ImageFactory.Random(Size, seed: 305), etag2, modified2);
        var later = new byte[4096];
        var e = await Assert.ThrowsAsync<RemoteFileChangedException>(() => device.ReadAsync(2 << 20, later, cts.Token).AsTask());
        Assert.Contains("changed", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(_server.Requests("/replaced.img"), r => r.Range is not null && r.Range.StartsWith($"bytes={2 << 20}-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_file_that_shrank_answering_416_is_reported_as_changed()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 317), etag: null) { HonourIfRange = false };
        _server.Map("/shrunk.img", file);
        using var cts = Limit();
        await using var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/shrunk.img"), ("readahead", "64k")), cts.Token);
        await device.ReadAsync(0, new byte[512], cts.Token);

        // Same Last-Modified (an upload within the same second), half the size: a read past the new end gets 416.
        file.Replace(ImageFactory.Random(Size / 2, seed: 318), null, file.LastModified);
        var e = await Assert.ThrowsAsync<RemoteFileChangedException>(() => device.ReadAsync(Size - 4096, new byte[512], cts.Token).AsTask());
        Assert.Contains($"size is now {Size / 2}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unchanged_validators_without_if_range_support_read_normally()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 306), "W/\"same\"") { HonourIfRange = false };
        _server.Map("/steady.img", file);
        using var cts = Limit();
        await using var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/steady.img")), cts.Token);
        await DeviceReads.AssertRandomReadsAsync(device, file.Data, count: 8, seed: 307, cts.Token);
    }

    // Item 7: `timeout` and `retries` apply to every request, the probe included.

    [Fact]
    public async Task Info_on_a_server_whose_head_never_answers_fails_with_a_timeout_after_the_retries()
    {
        _server.Map("/silent-head.img", (ctx, n) => NeverAnswerAsync(ctx));
        var r = await UrlDiskCli.RunAsync(["info", Spec(_server.Url("/silent-head.img"), ("timeout", 1), ("retries", 1))], TimeSpan.FromSeconds(60));
        CliAssert.Fails(r, "timeout");
        Assert.Equal(2, _server.Requests("/silent-head.img").Count(q => q.Method == "HEAD"));
    }

    [Fact]
    public async Task Info_on_a_server_whose_ranged_get_fallback_never_answers_fails_with_a_timeout()
    {
        _server.Map("/silent-get.img", (ctx, n) =>
        {
            if (HttpMethods.IsHead(ctx.Request.Method))
            {
                ctx.Response.StatusCode = 405;
                return Task.CompletedTask;
            }

            return NeverAnswerAsync(ctx);
        });
        var r = await UrlDiskCli.RunAsync(["info", Spec(_server.Url("/silent-get.img"), ("timeout", 1), ("retries", 1))], TimeSpan.FromSeconds(60));
        CliAssert.Fails(r, "timeout");
        Assert.Equal(2, _server.Requests("/silent-get.img").Count(q => q.Method == "GET" && q.Range is not null));
    }

    [Fact]
    public async Task Re_resolving_a_redirect_that_never_answers_fails_with_a_timeout()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 308));
        bool expired = false;
        _server.Map("/signed.img", (ctx, n) =>
        {
            if (Volatile.Read(ref expired))
            {
                return NeverAnswerAsync(ctx);
            }

            ctx.Response.StatusCode = 302;
            ctx.Response.Headers.Location = "/target.img";
            return Task.CompletedTask;
        });
        _server.Map("/target.img", async (ctx, n) =>
        {
            if (Volatile.Read(ref expired))
            {
                ctx.Response.StatusCode = 403; // the signed URL expired
                return;
            }

            await file.ServeAsync(ctx);
        });
        using var cts = Limit();
        await using var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/signed.img"), ("timeout", 1), ("retries", 1), ("readahead", "64k")), cts.Token);
        var buffer = new byte[4096];
        await device.ReadAsync(0, buffer, cts.Token);
        ImageFactory.AssertSameBytes(file.Data.AsSpan(0, 4096), buffer, "read through the redirect");

        Volatile.Write(ref expired, true);
        var e = await Assert.ThrowsAnyAsync<SourceException>(() => device.ReadAsync(2 << 20, buffer, cts.Token).AsTask());
        Assert.Contains("timeout", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(2, _server.Requests("/signed.img").Count(q => q.Number > 1));
    }

    // Item 11: only attempts without progress count against `retries`.

    [Fact]
    public async Task Convert_through_a_link_that_cuts_every_response_finishes_with_exact_bytes()
    {
        // Every answer stops after 200 KiB: a 4 MiB read needs about 20 attempts, each of which makes progress.
        const int Cut = 200 * 1024;
        var file = new RangeFile(ImageFactory.Random((5 << 20) + 12_345, seed: 309));
        _server.Map("/cutting.img", async (ctx, n) =>
        {
            if (IsRangeGet(ctx) && RangeFile.TryParseRange(ctx.Request.Headers.Range.ToString(), file.Data.Length, out long first, out long last, out _)
                && last - first + 1 > Cut)
            {
                ctx.Response.StatusCode = 206;
                ctx.Response.Headers.ETag = file.ETag;
                ctx.Response.Headers.LastModified = file.LastModifiedText;
                ctx.Response.Headers.ContentRange = $"bytes {first}-{last}/{file.Data.Length}";
                ctx.Response.ContentLength = last - first + 1;
                await ctx.Response.Body.WriteAsync(file.Data.AsMemory((int)first, Cut), ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                ctx.Abort();
                return;
            }

            await file.ServeAsync(ctx);
        });
        using var tmp = new TempDir();
        string output = tmp.File("out.raw");
        var r = await UrlDiskCli.RunAsync(["convert", "-f", "raw", "-O", "raw", Spec(_server.Url("/cutting.img"), ("retries", 2)), output], TimeSpan.FromSeconds(120));
        Assert.True(r.ExitCode == 0, r.ToString());
        ImageFactory.AssertSameBytes(file.Data, await File.ReadAllBytesAsync(output), "convert through a cutting link");
        Assert.True(_server.Requests("/cutting.img").Count(q => q.Range is not null) > 20, "the link should have cut many answers");
    }

    // Item 13: the cookie is a credential, kept to the origin it was given for.

    [Fact]
    public async Task Cookie_and_credentials_are_not_sent_to_another_origin_after_a_redirect()
    {
        await using var other = await FaultHttpServer.StartAsync();
        var file = new RangeFile(ImageFactory.Random(Size, seed: 310));
        other.Map("/elsewhere.img", file);
        _server.Map("/moved.img", (ctx, n) =>
        {
            ctx.Response.StatusCode = 302;
            ctx.Response.Headers.Location = other.Url("/elsewhere.img");
            return Task.CompletedTask;
        });
        string url = _server.Url("/moved.img").Replace("http://", $"http://bob:{Password}@", StringComparison.Ordinal);
        using var cts = Limit();
        await using (var device = await DeviceReads.OpenRawAsync(Spec(url, ("cookie", $"sid={CookieValue}")), cts.Token))
        {
            await DeviceReads.AssertRandomReadsAsync(device, file.Data, count: 4, seed: 311, cts.Token);
        }

        var origin = Assert.Single(_server.Requests("/moved.img"));
        Assert.Equal($"sid={CookieValue}", origin.Header("Cookie"));
        Assert.NotNull(origin.Header("Authorization"));
        var elsewhere = other.Requests("/elsewhere.img");
        Assert.NotEmpty(elsewhere);
        Assert.All(elsewhere, q => Assert.Null(q.Header("Cookie")));
        Assert.All(elsewhere, q => Assert.Null(q.Header("Authorization")));
    }

    [Fact]
    public async Task Cookie_is_kept_on_a_redirect_within_the_origin()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 312));
        _server.Map("/here.img", file);
        _server.Map("/alias.img", (ctx, n) =>
        {
            ctx.Response.StatusCode = 301;
            ctx.Response.Headers.Location = "/here.img";
            return Task.CompletedTask;
        });
        using var cts = Limit();
        await using (var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/alias.img"), ("cookie", $"sid={CookieValue}")), cts.Token))
        {
            await DeviceReads.AssertRandomReadsAsync(device, file.Data, count: 4, seed: 313, cts.Token);
        }

        var here = _server.Requests("/here.img");
        Assert.NotEmpty(here);
        Assert.All(here, q => Assert.Equal($"sid={CookieValue}", q.Header("Cookie")));
    }

    [Fact]
    public async Task A_cookie_value_after_a_doubled_comma_is_never_printed()
    {
        var file = new RangeFile(ImageFactory.Random(1 << 20, seed: 316));
        _server.Map("/cookie.img", file);

        // In key=value syntax ",," is a literal comma, so the cookie value is "x=1,sid=…"; info prints the spec it opened.
        string spec = $"driver=raw,file.driver=http,file.url={_server.Url("/cookie.img")},file.cookie=x=1,,sid={CookieValue}";
        var r = await UrlDiskCli.RunAsync("info", "--image-opts", spec);
        Assert.True(r.ExitCode == 0, r.ToString());
        CliAssert.NeverShows(r, CookieValue);
        Assert.Equal($"x=1,sid={CookieValue}", Assert.Single(_server.Requests("/cookie.img"), q => q.Method == "HEAD").Header("Cookie"));
    }

    /// <summary>Failures whose messages must name what went wrong but never the password or the cookie.</summary>
    public static TheoryData<string> Failures => ["404", "503", "timeout", "redirect-loop", "gzip", "changed", "cross-origin-404"];

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task Errors_never_show_the_password_or_the_cookie(string failure)
    {
        await using var other = await FaultHttpServer.StartAsync();
        var file = new RangeFile(ImageFactory.Random(1 << 20, seed: 314));
        int uploads = 0;
        _server.Map("/fail.img", async (ctx, n) =>
        {
            switch (failure)
            {
                case "404":
                    ctx.Response.StatusCode = 404;
                    return;
                case "503":
                    ctx.Response.StatusCode = 503;
                    return;
                case "timeout":
                    await NeverAnswerAsync(ctx);
                    return;
                case "redirect-loop":
                    ctx.Response.StatusCode = 302;
                    ctx.Response.Headers.Location = "/fail.img";
                    return;
                case "cross-origin-404":
                    ctx.Response.StatusCode = 302;
                    ctx.Response.Headers.Location = other.Url("/nothing-here.img");
                    return;
                case "gzip" when IsRangeGet(ctx):
                    await SendGzippedRangeAsync(ctx, file);
                    return;
                case "changed" when IsRangeGet(ctx):
                    // A new upload before every read, so each open sees a file that changes under it.
                    int upload = Interlocked.Increment(ref uploads);
                    file.Replace(ImageFactory.Random(1 << 20, seed: 315 + upload), $"\"v{upload + 1}\"", s_opened.AddDays(upload));
                    break;
            }

            await file.ServeAsync(ctx);
        });
        string url = _server.Url("/fail.img").Replace("http://", $"http://bob:{Password}@", StringComparison.Ordinal);
        string spec = Spec(url, ("cookie", $"sid={CookieValue}"), ("timeout", 1), ("retries", 0), ("readahead", "64k"));
        using var tmp = new TempDir();
        var r = await UrlDiskCli.RunAsync(["convert", "-f", "raw", "-O", "raw", spec, tmp.File("out.raw")], TimeSpan.FromSeconds(60));
        CliAssert.Fails(r);
        CliAssert.NeverShows(r, Password);
        CliAssert.NeverShows(r, CookieValue);
        CliAssert.NeverShows(r, "bob:");

        // The library's own exceptions, before any redaction by the CLI, hold no secret either.
        using var cts = Limit();
        var e = await Assert.ThrowsAnyAsync<UrlDiskException>(async () =>
        {
            await using var device = await DeviceReads.OpenRawAsync(spec, cts.Token);
            await DeviceReads.ReadAllAsync(device, cts.Token);
        });
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            foreach (var secret in new[] { Password, CookieValue, "bob:" })
            {
                Assert.DoesNotContain(secret, x.Message, StringComparison.Ordinal);
            }
        }
    }

    // Item 14: a cafile must hold a certificate.

    [Theory]
    [InlineData("empty")]
    [InlineData("key")]
    public async Task Https_cafile_without_a_certificate_is_refused_naming_the_option(string content)
    {
        using var tmp = new TempDir();
        string cafile = tmp.File("ca.pem");
        await File.WriteAllTextAsync(cafile, content == "empty" ? "" : System.Security.Cryptography.RSA.Create(2048).ExportRSAPrivateKeyPem());

        // The port is never reached: the option is refused while the spec is read.
        var r = await UrlDiskCli.RunAsync("info", HttpSpecs.JsonDotted("https", "https://127.0.0.1:1/x.img", ("cafile", cafile)));
        CliAssert.Fails(r, "cafile", "no PEM certificate");
    }
}
