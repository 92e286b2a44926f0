using System.CommandLine;
using System.Globalization;
using UrlDisk.Opening;
using UrlDisk.Operations;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk convert</c>: copy an image (any source, any format) into a local file, as qemu-img convert does.</summary>
internal static class ConvertVerb
{
    public static Command Create()
    {
        var source = new Argument<string>("source") { Description = "Path, URL or json: spec of the source image" };
        var target = new Argument<string>("target") { Description = "Output file" };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var outputFormat = new Option<string>("-O") { Description = "Output format: raw", DefaultValueFactory = _ => "raw" };
        var progress = new Option<bool>("--progress", "-p") { Description = "Show progress" };
        var noCreate = new Option<bool>("-n") { Description = "Write into an existing target instead of creating it" };
        var parallel = new Option<int>("--parallel", "-m") { Description = "Reads in flight (default 8)", DefaultValueFactory = _ => 8 };
        var sparse = new Option<string>("-S") { Description = "Zero runs of this size or more are not written (0 = write everything); default 4k", DefaultValueFactory = _ => "4k" };
        var copyOnRead = new Option<bool>("--copy-on-read") { Description = "Write data read from a backing chain into the overlay" };
        var cmd = new Command("convert", "Convert or copy an image into a local file")
        {
            source, target, format, imageOpts, outputFormat, progress, noCreate, parallel, sparse, copyOnRead,
        };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string outFmt = r.GetValue(outputFormat)!;
            if (outFmt != "raw")
            {
                throw new OptionException($"-O {outFmt}: output format not supported; allowed: raw");
            }

            int inFlight = r.GetValue(parallel);
            if (inFlight is < 1 or > 64)
            {
                throw new OptionException($"-m {inFlight}: must be from 1 to 64");
            }

            if (!Specs.SizeParser.TryParse(r.GetValue(sparse), out long sparseSize) || (sparseSize != 0 && sparseSize % 512 != 0))
            {
                throw new OptionException($"-S {r.GetValue(sparse)}: must be 0 or a multiple of 512 (sizes take k/M suffixes)");
            }

            var context = new OpenContext { CopyOnRead = r.GetValue(copyOnRead), Writable = r.GetValue(copyOnRead) };
            await using var image = await CliCommon.OpenAsync(r.GetValue(source)!, r.GetValue(imageOpts), r.GetValue(format), context, ct).ConfigureAwait(false);
            await using var output = RawFileTarget.Create(r.GetValue(target)!, image.Length, r.GetValue(noCreate));
            using var bar = r.GetValue(progress) ? new ProgressBar(image.Length) : null;
            var copier = new ImageCopier
            {
                Parallelism = inFlight,
                TargetIsZeroed = output.IsZeroed,
                DetectZeroes = sparseSize != 0,
                Progress = bar is null ? null : bar.Report,
            };
            await copier.CopyAsync(image, output, ct).ConfigureAwait(false);
            await output.CommitAsync().ConfigureAwait(false);
            bar?.Finish();
            return 0;
        }));
        return cmd;
    }
}

/// <summary>qemu-img's progress line: <c>    (12.34/100%)</c>, rewritten in place.</summary>
internal sealed class ProgressBar(long total) : IDisposable
{
    private readonly Lock _lock = new();
    private int _lastHundredths = -1;

    public void Report(long done)
    {
        int hundredths = total == 0 ? 10000 : (int)(done * 10000 / total);
        lock (_lock)
        {
            if (hundredths - _lastHundredths < 100 && hundredths != 10000)
            {
                return;
            }

            _lastHundredths = hundredths;
            Console.Out.Write(string.Create(CultureInfo.InvariantCulture, $"    ({hundredths / 100.0:0.00}/100%)\r"));
        }
    }

    public void Finish()
    {
        Report(total);
        Console.Out.WriteLine();
    }

    public void Dispose()
    {
    }
}
