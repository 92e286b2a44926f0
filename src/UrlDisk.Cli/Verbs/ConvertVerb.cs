using System.CommandLine;
using System.Globalization;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Formats.Vmdk;
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
        var outputFormat = new Option<string>("-O") { Description = "Output format: raw, qcow2, vmdk (-o subformat=streamOptimized) or vpc (fixed VHD)", DefaultValueFactory = _ => "raw" };
        var compress = new Option<bool>("-c") { Description = "Compress the qcow2 output (zlib, or zstd with -o compression_type=zstd)" };
        var createOptions = new Option<string[]>("-o") { Description = "qcow2 options: cluster_size, compat, compression_type, refcount_bits, extended_l2, lazy_refcounts; vmdk options: subformat=streamOptimized, adapter_type, hwversion, toolsversion; vpc options: subformat=fixed, force_size" };
        var progress = new Option<bool>("--progress", "-p") { Description = "Show progress" };
        var noCreate = new Option<bool>("-n") { Description = "Write into an existing target instead of creating it" };
        var parallel = CliCommon.WholeNumber("--parallel", "-m", "Reads in flight (default 8)", 8, 1, 64);
        var sparse = new Option<string>("-S") { Description = "Zero runs of this size or more are not written (0 = write everything); default 4k", DefaultValueFactory = _ => "4k" };
        var cache = new Option<string>("-t") { Description = "Cache mode of the output, as qemu-img: unsafe (default: no flush at the end), writeback, writethrough, directsync, none (flush to disk before finishing)", DefaultValueFactory = _ => "unsafe" };
        var copyOnRead = new Option<bool>("--copy-on-read") { Description = "Write data read from a backing chain into the overlay" };
        var cmd = new Command("convert", "Convert or copy an image into a local file")
        {
            source, target, format, imageOpts, outputFormat, progress, noCreate, parallel, sparse, cache, copyOnRead, compress, createOptions,
        };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string outFmt = r.GetValue(outputFormat)!;
            if (outFmt is not ("raw" or "qcow2" or "vmdk" or "vpc"))
            {
                throw new OptionException($"-O {outFmt}: output format not supported; allowed: raw, qcow2, vmdk, vpc");
            }

            string optionText = string.Join(',', r.GetValue(createOptions) ?? []);
            var vmdkOptions = outFmt == "vmdk" ? VmdkCreateOptions.Parse(optionText) : null;
            if (vmdkOptions is not null && r.GetValue(noCreate))
            {
                throw new OptionException("-n: -O vmdk writes a new streamOptimized file; it cannot write into an existing one");
            }

            if (outFmt == "raw" && (r.GetValue(compress) || optionText.Length > 0))
            {
                throw new OptionException("-c and -o need -O qcow2; raw output takes neither");
            }

            if (outFmt == "vpc" && r.GetValue(compress))
            {
                throw new OptionException("-c needs -O qcow2; vpc output is not compressed");
            }

            var vpcOptions = outFmt == "vpc" ? Formats.Vpc.VpcCreateOptions.Parse(optionText) : null;
            var qcow2Options = outFmt == "qcow2" ? Qcow2CreateOptions.Parse(optionText.Length == 0 ? null : optionText) : null;
            if (qcow2Options?.BackingFile is not null)
            {
                throw new OptionException("convert: -o backing_file is not supported; convert writes a standalone image");
            }

            int inFlight = r.GetValue(parallel);
            string sparseText = r.GetValue(sparse)!;
            if (!Specs.SizeParser.TryParse(sparseText, out long sparseSize))
            {
                throw new OptionException(Specs.SizeParser.Error("-S", sparseText));
            }

            if (sparseSize != 0 && sparseSize % 512 != 0)
            {
                throw new OptionException($"-S: '{sparseText}' is not allowed; use 0 or a multiple of 512 (sizes take k/M suffixes)");
            }

            string targetPath = CliCommon.RequirePath(r.GetValue(target), "convert: target");

            bool sync = r.GetValue(cache) switch
            {
                "unsafe" => false,
                "writeback" or "writethrough" or "directsync" or "none" => true,
                var other => throw new OptionException($"-t {other}: unknown cache mode; allowed: unsafe, writeback, writethrough, directsync, none"),
            };
            var context = new OpenContext { CopyOnRead = r.GetValue(copyOnRead), Writable = r.GetValue(copyOnRead) };
            await using var image = await CliCommon.OpenAsync(r.GetValue(source)!, r.GetValue(imageOpts), r.GetValue(format), context, ct).ConfigureAwait(false);
            using var bar = r.GetValue(progress) && !r.GetValue(CliCommon.Quiet) ? new ProgressBar(image.Length) : null;
            Task CopyAsync(IBlockDevice from, IBlockDevice to, bool targetIsZeroed, bool detectZeroes) => new ImageCopier
            {
                Parallelism = inFlight,
                TargetIsZeroed = targetIsZeroed,
                DetectZeroes = detectZeroes,
                Progress = bar is null ? null : bar.Report,
            }.CopyAsync(from, to, ct);

            if (vmdkOptions is not null)
            {
                // streamOptimized is written front to back (grains compressed, in order), not through the copier.
                await VmdkStreamWriter.WriteAsync(image, targetPath, vmdkOptions, bar is null ? null : bar.Report, ct).ConfigureAwait(false);
            }
            else if (qcow2Options is not null)
            {
                bool compressed = r.GetValue(compress);
                await using var qcow2 = await Qcow2ConvertTarget.CreateAsync(targetPath, image.Length, qcow2Options, compressed, r.GetValue(noCreate), ct).ConfigureAwait(false);

                // Compression works on whole clusters: chunks (cluster-aligned) are not split at zero runs.
                IBlockDevice from = compressed ? new ClusterAlignedExtents(image, qcow2.Image.ClusterSize) : image;
                await CopyAsync(from, qcow2, qcow2.IsZeroed, sparseSize != 0 && !compressed).ConfigureAwait(false);
                await qcow2.CommitAsync().ConfigureAwait(false);
            }
            else if (vpcOptions is not null)
            {
                await using var vhd = Formats.Vpc.VpcFixedTarget.Create(targetPath, image.Length, vpcOptions, r.GetValue(noCreate), sync);
                await CopyAsync(image, vhd, vhd.IsZeroed, sparseSize != 0).ConfigureAwait(false);
                await vhd.CommitAsync(ct).ConfigureAwait(false);
            }
            else
            {
                await using var output = RawFileTarget.Create(targetPath, image.Length, r.GetValue(noCreate), sync);
                await CopyAsync(image, output, output.IsZeroed, sparseSize != 0).ConfigureAwait(false);
                await output.CommitAsync().ConfigureAwait(false);
            }

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
