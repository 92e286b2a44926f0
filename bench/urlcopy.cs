#:project ../src/UrlDisk/UrlDisk.csproj
#:property TreatWarningsAsErrors=false

// Copies the bytes of a URL (any UrlDisk source) to a local file with parallel positional reads,
// the way `urldisk convert -O raw` would, for benchmarks. Usage: dotnet run urlcopy.cs -- SPEC OUT [PARALLEL] [CHUNK]
using System.Diagnostics;
using UrlDisk.Opening;

string spec = args[0], output = args[1];
int parallel = args.Length > 2 ? int.Parse(args[2]) : 4;
int chunk = args.Length > 3 ? int.Parse(args[3]) : 4 << 20;
var sw = Stopwatch.StartNew();
await using var dev = await ImageOpener.OpenAsync(spec, "raw");
using var outFile = File.OpenHandle(output, FileMode.Create, FileAccess.Write, FileShare.None, FileOptions.Asynchronous);
long next = -chunk;
await Task.WhenAll(Enumerable.Range(0, parallel).Select(async _ =>
{
    var buf = new byte[chunk];
    long off;
    while ((off = Interlocked.Add(ref next, chunk)) < dev.Length)
    {
        int n = (int)Math.Min(chunk, dev.Length - off);
        await dev.ReadAsync(off, buf.AsMemory(0, n));
        await RandomAccess.WriteAsync(outFile, buf.AsMemory(0, n), off);
    }
}));
Console.Error.WriteLine($"{dev.Length} bytes in {sw.Elapsed.TotalSeconds:0.00} s ({dev.Length / sw.Elapsed.TotalSeconds / 1048576:0.0} MiB/s)");
