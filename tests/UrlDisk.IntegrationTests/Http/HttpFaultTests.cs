using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>
/// Server misbehaviour real servers will not produce on demand, from the in-process fault server:
/// the http source retries what is transient, refuses what is wrong, and never returns wrong bytes.
/// </summary>
public sealed class HttpFaultTests : IAsyncLifetime
{
    private const int Size = (3 << 20) + 4096;
    private FaultHttpServer _server = null!;

    public async Task InitializeAsync() => _server = await FaultHttpServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static CancellationTokenSource Limit() => new(DeviceReads.Limit);

    private static bool IsRangeGet(HttpContext ctx) => HttpMethods.IsGet(ctx.Request.Method) && ctx.Request.Headers.Range.Count > 0;

    private static string Spec(string url, params (string Key, object Value)[] options) => HttpSpecs.JsonDotted("http", url, options);

    /// <summary>Reads at several places; each read either returns the right bytes or throws (never wrong bytes).</summary>
    private static async Task<Exception?> ReadNeverWrongAsync(IBlockDevice device, byte[] expected, CancellationToken ct)
    {
        foreach (int offset in new[] { 0, 1 << 20, Size - 70_000, 100_000 })
        {
            var buffer = new byte[65_000];
            try
            {
                await device.ReadAsync(offset, buffer, ct);
            }
            catch (Exception e) when (e is UrlDiskException or IOException)
            {
                return e;
            }

            ImageFactory.AssertSameBytes(expected.AsSpan(offset, buffer.Length), buffer, $"read at {offset}");
        }

        return null;
    }

    /// <summary>Sets the status and headers a correct 206 answer to the request's range has.</summary>
    private static (long First, long Last) StartPartial(HttpContext ctx, RangeFile file)
    {
        Assert.True(RangeFile.TryParseRange(ctx.Request.Headers.Range.ToString(), file.Data.Length, out long first, out long last, out _));
        ctx.Response.StatusCode = 206;
        ctx.Response.Headers.ETag = file.ETag;
        ctx.Response.Headers.LastModified = file.LastModifiedText;
        ctx.Response.Headers.AcceptRanges = "bytes";
        ctx.Response.Headers.ContentRange = $"bytes {first}-{last}/{file.Data.Length}";
        ctx.Response.ContentLength = last - first + 1;
        return (first, last);
    }

    [Fact]
    public async Task Server_answering_200_to_range_requests_never_yields_wrong_bytes()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 90)) { HonourRanges = false };
        _server.Map("/full.img", file);
        using var cts = Limit();
        Exception? error;
        await using (var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/full.img"), ("retries", 1)), cts.Token))
        {
            error = await ReadNeverWrongAsync(device, file.Data, cts.Token);
        }

        if (error is not null)
        {
            // The file did not change (same ETag in every answer): the server ignores ranges, and the error must say that.
            Assert.IsNotType<RemoteFileChangedException>(error);
            Assert.True(error.Message.Contains("200", StringComparison.Ordinal) || error.Message.Contains("range", StringComparison.OrdinalIgnoreCase), $"the error should say the server ignored the range: {error.Message}");
        }
    }

    [Fact]
    public async Task Wrong_content_range_is_refused()
    {
        var data = ImageFactory.Random(Size, seed: 91);
        _server.Map("/shifted.img", async (ctx, n) =>
        {
            if (!IsRangeGet(ctx) || !RangeFile.TryParseRange(ctx.Request.Headers.Range.ToString(), data.Length, out long first, out long last, out _) || last == 0)
            {
                await new RangeFile(data).ServeAsync(ctx);
                return;
            }

            // Consistent headers and body, but for a range 512 bytes later than the one asked for.
            long f = Math.Min(first + 512, data.Length - 1);
            long l = Math.Min(last + 512, data.Length - 1);
            ctx.Response.StatusCode = 206;
            ctx.Response.Headers.ETag = "\"v1\"";
            ctx.Response.Headers.ContentRange = $"bytes {f}-{l}/{data.Length}";
            ctx.Response.ContentLength = l - f + 1;
            await ctx.Response.Body.WriteAsync(data.AsMemory((int)f, (int)(l - f + 1)), ctx.RequestAborted);
        });
        using var cts = Limit();
        await using var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/shifted.img"), ("retries", 1)), cts.Token);
        var e = await Assert.ThrowsAnyAsync<SourceException>(() => device.ReadAsync(1 << 20, new byte[4096], cts.Token).AsTask());

        // The message names the range asked for and the one that came.
        var asked = _server.Requests("/shifted.img").Last(r => r.Range is not null).Range!;
        Assert.True(RangeFile.TryParseRange(asked, data.Length, out long a, out long b, out _));
        Assert.Contains($"{a}-{b}", e.Message, StringComparison.Ordinal);
        Assert.Contains($"{a + 512}-", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reset_mid_body_is_retried_and_the_bytes_are_right()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 92));
        var seen = new ConcurrentDictionary<string, int>();
        _server.Map("/reset.img", async (ctx, n) =>
        {
            if (IsRangeGet(ctx) && seen.AddOrUpdate(ctx.Request.Headers.Range.ToString(), 1, (_, c) => c + 1) == 1
                && RangeFile.TryParseRange(ctx.Request.Headers.Range.ToString(), Size, out long first, out long last, out _) && last > first)
            {
                // First try of every range: half the body, then the connection is cut.
                StartPartial(ctx, file);
                await ctx.Response.Body.WriteAsync(file.Data.AsMemory((int)first, (int)((last - first + 1) / 2)), ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                ctx.Abort();
                return;
            }

            await file.ServeAsync(ctx);
        });
        using var cts = Limit();
        await using (var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/reset.img"), ("readahead", "64k")), cts.Token))
        {
            await DeviceReads.AssertRandomReadsAsync(device, file.Data, count: 10, seed: 93, cts.Token);
        }

        var gets = _server.Requests("/reset.img").Where(r => r.Range is not null).ToList();
        Assert.Contains(gets, r => r.Status == 206 && gets.Count(x => x.Range == r.Range) >= 2);
    }

    [Fact]
    public async Task Service_unavailable_twice_then_success_is_retried()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 94));
        int failures = 0;
        _server.Map("/busy.img", async (ctx, n) =>
        {
            if (IsRangeGet(ctx) && Interlocked.Increment(ref failures) <= 2)
            {
                ctx.Response.StatusCode = 503;
                ctx.Response.Headers.RetryAfter = "0";
                return;
            }

            await file.ServeAsync(ctx);
        });
        using var cts = Limit();
        await using (var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/busy.img")), cts.Token))
        {
            await DeviceReads.AssertRandomReadsAsync(device, file.Data, count: 8, seed: 95, cts.Token);
        }

        var statuses = _server.Requests("/busy.img").Where(r => r.Range is not null).Select(r => r.Status).ToList();
        Assert.Equal(2, statuses.Count(s => s == 503));
        Assert.Contains(206, statuses);
    }

    [Fact]
    public async Task Opening_retries_a_transient_failure_of_the_probe()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 96));
        int heads = 0;
        _server.Map("/waking.img", async (ctx, n) =>
        {
            if (HttpMethods.IsHead(ctx.Request.Method) && Interlocked.Increment(ref heads) <= 2)
            {
                ctx.Response.StatusCode = 502;
                return;
            }

            await file.ServeAsync(ctx);
        });
        using var cts = Limit();
        await using (var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/waking.img")), cts.Token))
        {
            Assert.Equal(file.Data.Length, device.Length);
            await DeviceReads.AssertRandomReadsAsync(device, file.Data, count: 4, seed: 97, cts.Token);
        }

        Assert.Equal(3, _server.Requests("/waking.img").Count(r => r.Method == "HEAD"));
    }

    [Fact]
    public async Task Service_unavailable_forever_fails_naming_503_after_the_retries()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 96));
        _server.Map("/down.img", async (ctx, n) =>
        {
            if (IsRangeGet(ctx))
            {
                ctx.Response.StatusCode = 503;
                return;
            }

            await file.ServeAsync(ctx);
        });
        using var cts = Limit();
        await using var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/down.img"), ("retries", 2)), cts.Token);
        var e = await Assert.ThrowsAnyAsync<SourceException>(() => device.ReadAsync(0, new byte[512], cts.Token).AsTask());
        Assert.Contains("503", e.Message, StringComparison.Ordinal);
        int attempts = _server.Requests("/down.img").Count(r => r.Range is not null && r.Range.StartsWith("bytes=0-", StringComparison.Ordinal));
        Assert.Equal(3, attempts);
    }

    [Fact]
    public async Task Head_refused_falls_back_to_a_ranged_get_for_the_size()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 97));
        _server.Map("/nohead.img", async (ctx, n) =>
        {
            if (HttpMethods.IsHead(ctx.Request.Method))
            {
                ctx.Response.StatusCode = 403;
                return;
            }

            await file.ServeAsync(ctx);
        });
        var r = await UrlDiskCli.RunAsync("info", "--output", "json", _server.Url("/nohead.img"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains($"\"virtual-size\": {Size}", r.Stdout, StringComparison.Ordinal);

        using var cts = Limit();
        await using (var device = await DeviceReads.OpenAsync(_server.Url("/nohead.img"), cts.Token))
        {
            await DeviceReads.AssertRandomReadsAsync(device, file.Data, count: 6, seed: 98, cts.Token);
        }

        Assert.Contains(_server.Requests("/nohead.img"), q => q.Method == "GET" && q.Range is not null && q.Range.StartsWith("bytes=0-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Force_range_sends_no_head_and_needs_no_accept_ranges()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 99)) { AdvertiseRanges = false };
        _server.Map("/forced.img", file);
        using var cts = Limit();
        await using (var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/forced.img"), ("force-range", "on")), cts.Token))
        {
            Assert.Equal(Size, device.Length);
            await DeviceReads.AssertRandomReadsAsync(device, file.Data, count: 6, seed: 100, cts.Token);
        }

        Assert.DoesNotContain(_server.Requests("/forced.img"), q => q.Method == "HEAD");
    }

    [Fact]
    public async Task Redirect_chain_is_followed_once_not_for_every_request()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 101));
        _server.Map("/start.img", (ctx, n) =>
        {
            ctx.Response.StatusCode = 302;
            ctx.Response.Headers.Location = _server.Url("/hop.img"); // absolute
            return Task.CompletedTask;
        });
        _server.Map("/hop.img", (ctx, n) =>
        {
            ctx.Response.StatusCode = 301;
            ctx.Response.Headers.Location = "/final.img"; // relative
            return Task.CompletedTask;
        });
        _server.Map("/final.img", file);
        using var cts = Limit();
        await using (var device = await DeviceReads.OpenAsync(_server.Url("/start.img"), cts.Token))
        {
            await DeviceReads.AssertConcurrentReadsAsync(device, file.Data, readers: 4, readsEach: 8, seed: 102, cts.Token);
        }

        Assert.Single(_server.Requests("/start.img"));
        Assert.Single(_server.Requests("/hop.img"));
        Assert.True(_server.Requests("/final.img").Count(r => r.Range is not null) >= 2);
    }

    [Fact]
    public async Task Redirect_loop_is_a_clear_error()
    {
        _server.Map("/loop-a.img", (ctx, n) => { ctx.Response.StatusCode = 302; ctx.Response.Headers.Location = "/loop-b.img"; return Task.CompletedTask; });
        _server.Map("/loop-b.img", (ctx, n) => { ctx.Response.StatusCode = 302; ctx.Response.Headers.Location = "/loop-a.img"; return Task.CompletedTask; });
        var r = await UrlDiskCli.RunAsync(["info", _server.Url("/loop-a.img")], TimeSpan.FromSeconds(60));
        CliAssert.Fails(r, "redirect");
    }

    [Fact]
    public async Task File_changed_on_the_server_is_reported_and_never_mixed()
    {
        var v1 = ImageFactory.Random(Size, seed: 103);
        var file = new RangeFile(v1, "\"v1\"");
        _server.Map("/changing.img", file);
        using var cts = Limit();
        await using var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/changing.img"), ("readahead", "64k")), cts.Token);
        var first = new byte[4096];
        await device.ReadAsync(0, first, cts.Token);
        ImageFactory.AssertSameBytes(v1.AsSpan(0, 4096), first, "read before the change");

        // A new upload: same size, other bytes, new validators.
        file.Replace(ImageFactory.Random(Size, seed: 104), "\"v2\"", DateTimeOffset.UtcNow);
        var later = new byte[4096];
        var e = await Assert.ThrowsAsync<RemoteFileChangedException>(() => device.ReadAsync(2 << 20, later, cts.Token).AsTask());
        Assert.Contains("chang", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task File_changed_size_on_the_server_is_reported()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 105), "\"s1\"");
        _server.Map("/grown.img", file);
        using var cts = Limit();
        await using var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/grown.img"), ("readahead", "64k")), cts.Token);
        await device.ReadAsync(0, new byte[512], cts.Token);
        file.Replace(ImageFactory.Random(Size * 2, seed: 106), "\"s2\"", DateTimeOffset.UtcNow);
        await Assert.ThrowsAsync<RemoteFileChangedException>(() => device.ReadAsync(2 << 20, new byte[512], cts.Token).AsTask());
    }

    [Fact]
    public async Task Stalled_response_times_out_and_the_retry_succeeds()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 107));
        int stalls = 0;
        _server.Map("/stall-once.img", async (ctx, n) =>
        {
            if (IsRangeGet(ctx) && Interlocked.Increment(ref stalls) == 1)
            {
                // Right headers, then silence far longer than the client's timeout.
                StartPartial(ctx, file);
                await ctx.Response.StartAsync(ctx.RequestAborted);
                await Task.Delay(TimeSpan.FromSeconds(60), ctx.RequestAborted);
                return;
            }

            await file.ServeAsync(ctx);
        });
        using var cts = Limit();
        var sw = Stopwatch.StartNew();
        await using (var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/stall-once.img"), ("timeout", 1)), cts.Token))
        {
            await DeviceReads.AssertRandomReadsAsync(device, file.Data, count: 4, seed: 108, cts.Token);
        }

        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"a 1 s timeout took {sw.Elapsed.TotalSeconds:0.0} s to recover");
    }

    [Fact]
    public async Task Stall_mid_body_with_no_retries_fails_naming_the_timeout()
    {
        var file = new RangeFile(ImageFactory.Random(Size, seed: 109));
        _server.Map("/stall.img", async (ctx, n) =>
        {
            if (IsRangeGet(ctx) && RangeFile.TryParseRange(ctx.Request.Headers.Range.ToString(), Size, out long first, out long last, out _) && last > first)
            {
                StartPartial(ctx, file);
                await ctx.Response.Body.WriteAsync(file.Data.AsMemory((int)first, (int)((last - first + 1) / 2)), ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                await Task.Delay(TimeSpan.FromSeconds(60), ctx.RequestAborted);
                return;
            }

            await file.ServeAsync(ctx);
        });
        using var cts = Limit();
        var sw = Stopwatch.StartNew();
        await using var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/stall.img"), ("timeout", 1), ("retries", 0)), cts.Token);
        var e = await Assert.ThrowsAnyAsync<SourceException>(() => device.ReadAsync(1 << 20, new byte[100_000], cts.Token).AsTask());
        Assert.True(e.Message.Contains("timed out", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("timeout", StringComparison.OrdinalIgnoreCase), e.Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"a 1 s timeout took {sw.Elapsed.TotalSeconds:0.0} s");
    }

    [Fact]
    public async Task Slow_but_steady_transfer_is_not_a_timeout()
    {
        // "timeout" is time without progress, not total time: 2.5 s of trickle with timeout=2 must succeed
        // (a 250 ms gap leaves room for a loaded machine; the whole transfer still outlasts the timeout).
        var data = ImageFactory.Random(Size, seed: 110);
        var file = new RangeFile(data);
        _server.Map("/trickle.img", async (ctx, n) =>
        {
            if (IsRangeGet(ctx) && RangeFile.TryParseRange(ctx.Request.Headers.Range.ToString(), Size, out long first, out long last, out _))
            {
                StartPartial(ctx, file);
                long len = last - first + 1;
                const int Steps = 10;
                for (int i = 0; i < Steps; i++)
                {
                    long a = first + (len * i / Steps);
                    long b = first + (len * (i + 1) / Steps);
                    await ctx.Response.Body.WriteAsync(data.AsMemory((int)a, (int)(b - a)), ctx.RequestAborted);
                    await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                    await Task.Delay(250, ctx.RequestAborted);
                }

                return;
            }

            await file.ServeAsync(ctx);
        });
        using var cts = Limit();
        await using var device = await DeviceReads.OpenRawAsync(Spec(_server.Url("/trickle.img"), ("timeout", 2), ("retries", 0), ("readahead", "64k")), cts.Token);
        var buffer = new byte[8192];
        await device.ReadAsync(1 << 20, buffer, cts.Token);
        ImageFactory.AssertSameBytes(data.AsSpan(1 << 20, 8192), buffer, "trickled read");
    }

    [Fact]
    public async Task Server_without_ranges_is_read_whole_once_through_the_fill_cache()
    {
        // No Accept-Ranges and Range ignored (a plain file server): QEMU refuses it; UrlDisk reads it once, in order.
        var file = new RangeFile(ImageFactory.Random(Size, seed: 111)) { AdvertiseRanges = false, HonourRanges = false };
        _server.Map("/noranges.img", file);
        using var cts = Limit();
        await using (var device = await DeviceReads.OpenAsync(_server.Url("/noranges.img"), cts.Token))
        {
            Assert.Equal(Size, device.Length);
            Assert.Null(await ReadNeverWrongAsync(device, file.Data, cts.Token));
            await DeviceReads.AssertRandomReadsAsync(device, file.Data, count: 10, seed: 112, cts.Token);
        }

        // The probe's ranged GET (answered 200) and one plain GET of the whole file: never one per read.
        var gets = _server.Requests("/noranges.img").Where(r => r.Method == "GET").ToList();
        Assert.InRange(gets.Count, 1, 2);
        Assert.Single(gets, r => r.Range is null);
    }
}
