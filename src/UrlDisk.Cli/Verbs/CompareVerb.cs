using System.CommandLine;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk compare [-s] A B</c>: exit 0 identical, 1 different, 2 error (as qemu-img compare).</summary>
internal static class CompareVerb
{
    private const int Chunk = 1 << 20;

    public static Command Create()
    {
        var first = new Argument<string>("filename1") { Description = "First image (path, URL or json: spec)" };
        var second = new Argument<string>("filename2") { Description = "Second image" };
        var format1 = new Option<string?>("-f") { Description = "Format of the first image; probed when absent" };
        var format2 = new Option<string?>("-F") { Description = "Format of the second image; probed when absent" };
        var strict = new Option<bool>("--strict", "-s") { Description = "Strict: images of different sizes are different" };
        var imageOpts = CliCommon.ImageOpts();
        var sourceCache = CacheMode.Source();
        var progress = new Option<bool>("--progress", "-p") { Description = "Show progress, as qemu-img's (12.34/100%)" };
        var cmd = new Command("compare", "Compare the contents of two images") { first, second, format1, format2, strict, imageOpts, sourceCache, progress };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            try
            {
                CacheMode.CheckSource(r.GetValue(sourceCache));
                await using var a = await CliCommon.OpenAsync(r.GetValue(first)!, r.GetValue(imageOpts), r.GetValue(format1), null, ct).ConfigureAwait(false);
                await using var b = await CliCommon.OpenAsync(r.GetValue(second)!, r.GetValue(imageOpts), r.GetValue(format2), null, ct).ConfigureAwait(false);
                // -q: the exit code only, as qemu-img compare -q.
                bool quiet = r.GetValue(CliCommon.Quiet);
                using var bar = r.GetValue(progress) && !quiet ? new ProgressBar(Math.Max(a.Length, b.Length)) : null;
                return await CompareAsync(a, b, r.GetValue(strict), quiet ? TextWriter.Null : Console.Out, ct, bar is null ? null : bar.Report).ConfigureAwait(false);
            }
            catch (Exception e) when (e is UrlDiskException or IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
            {
                Console.Error.WriteLine("urldisk: " + Redact.Spec(e.Message.ReplaceLineEndings(" ")));
                return 2;
            }
        }));
        return cmd;
    }

    public static async Task<int> CompareAsync(IBlockDevice a, IBlockDevice b, bool strict, TextWriter output, CancellationToken ct, Action<long>? progress = null)
    {
        if (a.Length != b.Length && strict)
        {
            output.WriteLine("Strict mode: Image size mismatch!");
            return 1;
        }

        long common = Math.Min(a.Length, b.Length);
        var bufA = new byte[Chunk];
        var bufB = new byte[Chunk];
        for (long pos = 0; pos < common; pos += Chunk)
        {
            int n = (int)Math.Min(Chunk, common - pos);
            await Task.WhenAll(a.ReadAsync(pos, bufA.AsMemory(0, n), ct).AsTask(), b.ReadAsync(pos, bufB.AsMemory(0, n), ct).AsTask()).ConfigureAwait(false);
            int same = bufA.AsSpan(0, n).CommonPrefixLength(bufB.AsSpan(0, n));
            if (same < n)
            {
                output.WriteLine($"Content mismatch at offset {pos + same}!");
                return 1;
            }

            progress?.Invoke(pos + n);
        }

        // The larger image's tail must read as zeros (qemu-img warns of the sizes only once the common part is equal).
        if (a.Length != b.Length)
        {
            output.WriteLine("Warning: Image size mismatch!");
        }

        var longer = a.Length > b.Length ? a : b;
        for (long pos = common; pos < longer.Length; pos += Chunk)
        {
            int n = (int)Math.Min(Chunk, longer.Length - pos);
            await longer.ReadAsync(pos, bufA.AsMemory(0, n), ct).ConfigureAwait(false);
            int zeros = bufA.AsSpan(0, n).IndexOfAnyExcept((byte)0);
            if (zeros >= 0)
            {
                output.WriteLine($"Content mismatch at offset {pos + zeros}!");
                return 1;
            }

            progress?.Invoke(pos + n);
        }

        progress?.Invoke(longer.Length);

        output.WriteLine("Images are identical.");
        return 0;
    }
}
