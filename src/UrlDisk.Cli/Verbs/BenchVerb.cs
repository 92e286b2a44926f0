using System.Buffers;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary>
/// <c>urldisk bench</c>: qemu-img bench's sequential I/O benchmark, mostly to measure a URL's read latency and
/// throughput: COUNT requests of SIZE bytes, DEPTH in flight, from OFFSET on in steps of STEP (wrapping at the end).
/// </summary>
internal static class BenchVerb
{
    public static Command Create()
    {
        var filename = new Argument<string>("filename") { Description = "Path, URL or json: spec of the image" };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var count = CliCommon.WholeNumber("--count", "-c", "Requests to send (default 75000)", 75000, 0, int.MaxValue);
        var depth = CliCommon.WholeNumber("--depth", "-d", "Requests in flight at once (default 64)", 64, 1, 65536);
        var size = new Option<string>("-s") { Description = "Bytes per request (default 4096; k/M suffixes)", DefaultValueFactory = _ => "4096" };
        var step = new Option<string?>("-S") { Description = "Offset increment between requests (default: the request size)" };
        var offset = new Option<string>("-o") { Description = "Offset of the first request (default 0)", DefaultValueFactory = _ => "0" };
        var write = new Option<bool>("-w") { Description = "Write test (local images only); the default is a read test" };
        var pattern = new Option<string?>("--pattern") { Description = "Byte written by a write test (0-255, default 0)" };
        var flushInterval = new Option<string?>("--flush-interval") { Description = "Write test: drain and flush whenever the requests left are a multiple of this" };
        var noDrain = new Option<bool>("--no-drain") { Description = "With --flush-interval: flush without waiting for requests in flight" };
        var cache = CacheMode.Output("Cache mode, accepted and checked as qemu-img's (flushes are sent as in writeback)");
        var aio = new Option<string?>("-i") { Description = "AIO backend, accepted for qemu-img compatibility: threads, native, io_uring" };
        var native = new Option<bool>("-n") { Description = "Native AIO, accepted for qemu-img compatibility" };
        var cmd = new Command("bench", """
            Run a simple sequential I/O benchmark on an image, as qemu-img bench: prints qemu-img's two lines and the time taken.

            Examples:
              urldisk bench -c 1000 -d 8 -s 64k https://host/images/disk.img
              urldisk bench -c 200 -d 1 -s 4k -S 1M https://host/images/disk.img     # latency: one request at a time, 1 MiB apart
              urldisk bench -w -c 10000 --pattern=0xaa --flush-interval=100 scratch.qcow2
            """)
        { filename, format, imageOpts, count, depth, size, step, offset, write, pattern, flushInterval, noDrain, cache, aio, native };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            int requests = r.GetValue(count), inFlight = r.GetValue(depth);
            long bufferSize = Size("-s", r.GetValue(size)!, 1, int.MaxValue);
            long stride = r.GetValue(step) is { } s ? Size("-S", s, 0, int.MaxValue) : bufferSize;
            long start = Size("-o", r.GetValue(offset)!, 0, long.MaxValue);
            bool isWrite = r.GetValue(write);
            byte fill = r.GetValue(pattern) is { } p ? Pattern(p) : (byte)0;
            int interval = r.GetValue(flushInterval) is { } f ? (int)Size("--flush-interval", f, 0, int.MaxValue) : 0;
            CacheMode.Check(r.GetValue(cache), "Invalid cache mode");

            if (r.GetValue(aio) is { } a && a is not ("threads" or "native" or "io_uring"))
            {
                throw new OptionException($"-i {a}: unknown AIO backend; allowed: threads, native, io_uring");
            }

            if (interval > 0 && !isWrite)
            {
                throw new OptionException("--flush-interval is only available in write tests (-w)");
            }

            if (r.GetValue(noDrain) && interval == 0)
            {
                throw new OptionException("--no-drain requires --flush-interval");
            }

            if (interval > 0 && interval < inFlight && !r.GetValue(noDrain))
            {
                throw new OptionException($"Flush interval can't be smaller than depth (--flush-interval={interval}, -d {inFlight})");
            }

            string spec = r.GetValue(filename)!;
            await using var image = isWrite
                ? await ServeVerb.OpenAsync(spec, r.GetValue(imageOpts), r.GetValue(format), readOnly: false, copyOnRead: false, ct, "benchmarking").ConfigureAwait(false)
                : await CliCommon.OpenAsync(spec, r.GetValue(imageOpts), r.GetValue(format), null, ct).ConfigureAwait(false);
            if (isWrite && !image.Info.CanWrite)
            {
                throw new UrlDiskException($"bench -w: '{InfoVerb.DisplayFilename(spec)}' cannot be written (remote images are read-only); write tests need a local image");
            }

            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Sending {requests} {(isWrite ? "write" : "read")} requests, {bufferSize} bytes each, {inFlight} in parallel (starting at offset {start}, step size {stride})"));
            if (interval > 0)
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Sending flush every {interval} requests"));
            }

            var clock = Stopwatch.StartNew();
            await RunAsync(image, requests, inFlight, (int)bufferSize, start, stride, isWrite, fill, interval, !r.GetValue(noDrain), ct).ConfigureAwait(false);
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Run completed in {clock.Elapsed.TotalSeconds:F3} seconds."));
            return 0;
        }));
        return cmd;
    }

    /// <summary>
    /// Sends the requests, <paramref name="depth"/> at a time. With a flush interval the requests are cut where the
    /// number left is a multiple of it: with drain, those in flight finish and then the flush runs; without, the
    /// flush is sent beside them.
    /// </summary>
    private static async Task RunAsync(IBlockDevice image, int count, int depth, int size, long start, long step, bool write, byte fill, int interval, bool drain, CancellationToken ct)
    {
        long length = image.Length;
        long OffsetOf(long i) => i == 0 || length == 0 ? start : ((start % length) + (i * step % length)) % length;
        bool FlushBefore(long i) => interval > 0 && i > 0 && (count - i) % interval == 0;

        Exception? error = null;
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct);
        long segmentStart = 0;
        while (segmentStart < count)
        {
            long segmentEnd = segmentStart + 1;
            while (segmentEnd < count && !(drain && FlushBefore(segmentEnd)))
            {
                segmentEnd++;
            }

            long next = segmentStart - 1;
            var workers = Enumerable.Range(0, (int)Math.Min(depth, segmentEnd - segmentStart)).Select(async _ =>
            {
                var buffer = ArrayPool<byte>.Shared.Rent(size);
                try
                {
                    buffer.AsSpan(0, size).Fill(fill);
                    long i;
                    while ((i = Interlocked.Increment(ref next)) < segmentEnd)
                    {
                        if (!drain && FlushBefore(i))
                        {
                            await image.FlushAsync(failed.Token).ConfigureAwait(false);
                        }

                        long at = OffsetOf(i);
                        if (at > length || size > length - at)
                        {
                            throw new UrlDiskException($"Failed request: bytes {at}+{size} are past the end of the image ({length} bytes)");
                        }

                        if (write)
                        {
                            await image.WriteAsync(at, buffer.AsMemory(0, size), default, failed.Token).ConfigureAwait(false);
                        }
                        else
                        {
                            await image.ReadAsync(at, buffer.AsMemory(0, size), failed.Token).ConfigureAwait(false);
                        }
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    // The first failure ends the run; the others' cancellations are not the story.
                    if (Interlocked.CompareExchange(ref error, e, null) is null)
                    {
                        await failed.CancelAsync().ConfigureAwait(false);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }).ToList();
            await Task.WhenAll(workers).ConfigureAwait(false);
            if (error is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
            }

            if (drain && segmentEnd < count)
            {
                await image.FlushAsync(failed.Token).ConfigureAwait(false);
            }

            segmentStart = segmentEnd;
        }

        if (write)
        {
            await image.FlushAsync(failed.Token).ConfigureAwait(false);
        }
    }

    private static long Size(string flag, string text, long min, long max)
    {
        if (!SizeParser.TryParse(text, out long n))
        {
            throw new OptionException(SizeParser.Error(flag, text));
        }

        if (n < min || n > max)
        {
            throw new OptionException($"{flag}: '{text}' is not allowed; use {min} to {max}");
        }

        return n;
    }

    private static byte Pattern(string text)
    {
        bool hex = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        if (int.TryParse(hex ? text[2..] : text, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v is >= 0 and <= 255)
        {
            return (byte)v;
        }

        throw new OptionException($"--pattern: Invalid pattern byte specified ('{text}'); use 0 to 255 (or 0x00 to 0xff)");
    }
}
