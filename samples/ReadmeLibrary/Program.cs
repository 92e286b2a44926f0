using Microsoft.Extensions.Logging.Abstractions;
using UrlDisk;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;
using UrlDisk.Sources.Http;

string url = args.Length > 0 ? args[0] : "https://host/disk.img";

// Open a URL, a path or a json: spec; the format (raw, qcow2) is probed.
await using IBlockDevice disk = await ImageOpener.OpenAsync(url);
var buffer = new byte[4096];
await disk.ReadAsync(1 << 20, buffer);                     // positional, concurrent, async
await using var stream = new BlockDeviceStream(disk);      // for code that wants a Stream

// A local qcow2 overlay over the remote image; copy-on-read keeps what was read (and the zeros found),
// so the remote image is needed only once (the backing file is opened lazily, on the first read that needs it).
await Qcow2Creator.CreateAsync("top.qcow2", disk.Length, new Qcow2CreateOptions { BackingFile = url, BackingFormat = "raw" });
await using (var overlay = await ImageOpener.OpenAsync("top.qcow2", "qcow2", new OpenContext { Writable = true, CopyOnRead = true }))
{
    await overlay.ReadAsync(0, buffer);
}

// convert -O qcow2 -c as a call, with progress; then check the result like qemu-img check.
await Qcow2Writer.ConvertAsync(disk, "copy.qcow2", new Qcow2CreateOptions { CompressionType = "zstd" }, compress: true,
    progress: new Progress<long>(bytes => Console.Error.Write($"\r{bytes} bytes")));
await using (var file = await ImageOpener.OpenAsync("copy.qcow2", "raw"))
{
    Qcow2CheckResult check = await Qcow2Checker.CheckAsync(file, repair: null, CancellationToken.None);
    Console.WriteLine($"\ncopy.qcow2: {check.Corruptions} corruptions, {check.Leaks} leaks");
}

// Typed options instead of a spec string (headers, BearerToken, UserAgent …), with your own handler and logger.
var http = new HttpSourceOptions { Url = new Uri(url), Headers = ["X-Tenant: blue"], Timeout = TimeSpan.FromSeconds(10) };
var context = new OpenContext { LoggerFactory = NullLoggerFactory.Instance, HttpMessageHandlerFactory = () => new SocketsHttpHandler { AllowAutoRedirect = false } };
if (url.StartsWith("http", StringComparison.Ordinal))
{
    await using var typed = await ImageOpener.OpenAsync(http, "raw", context);
    Console.WriteLine($"{typed.Info.DisplayName}: {typed.Length} bytes");
}
