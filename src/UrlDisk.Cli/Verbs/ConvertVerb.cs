using System.CommandLine;
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
        var files = new Argument<string[]>("files") { Description = "Source images (path, URL or json: spec; several are joined one after another), then the output file", Arity = ArgumentArity.ZeroOrMore };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var outputFormat = new Option<string>("-O") { Description = "Output format: raw, qcow2, vmdk (-o subformat=streamOptimized) or vpc (fixed VHD)", DefaultValueFactory = _ => "raw" };
        var compress = new Option<bool>("-c") { Description = "Compress the qcow2 output (zlib, or zstd with -o compression_type=zstd)" };
        var createOptions = new Option<string[]>("-o") { Description = "Options of the output format (-o help lists them): qcow2: cluster_size, compat, compression_type, refcount_bits, extended_l2, lazy_refcounts, backing_file, backing_fmt, preallocation=off|metadata|falloc|full; raw: preallocation=off|falloc|full; vmdk: subformat=streamOptimized, adapter_type, hwversion, toolsversion; vpc: subformat=fixed, force_size" };
        var progress = new Option<bool>("--progress", "-p") { Description = "Show progress (rate and time left too; a line per 10% when stdout is not a terminal)" };
        var noCreate = new Option<bool>("-n") { Description = "Write into an existing target instead of creating it" };
        var parallel = CliCommon.WholeNumber("--parallel", "-m", "Reads in flight", 8, 1, 64);
        var outOfOrder = new Option<bool>("-W") { Description = "Allow out-of-order writes (qcow2 output: clusters are then stored in the order reads finish, not in guest order)" };
        var sparse = new Option<string>("-S") { Description = "Zero runs of this size or more are not written (0 = write everything)", DefaultValueFactory = _ => "4k" };
        var cache = new Option<string>("-t") { Description = "Cache mode of the output, as qemu-img: unsafe (no flush at the end), writeback, writethrough, directsync, none (flush to disk before finishing)", DefaultValueFactory = _ => "unsafe" };
        var sourceCache = new Option<string>("-T") { Description = "Cache mode of the sources, as qemu-img: none, writeback, writethrough, directsync, unsafe (accepted and checked; urldisk reads sources the same way in every mode)", DefaultValueFactory = _ => "writeback" };
        var targetIsZero = new Option<bool>("--target-is-zero") { Description = "With -n: the existing target already reads as zeros, so zeros are not written" };
        var backing = new Option<string?>("-B") { Description = "Create the output (qcow2) with this backing file and write only what differs from it" };
        var backingFormat = new Option<string?>("-F") { Description = "Format of the -B backing file (raw or qcow2); required with -B, as qemu-img requires" };
        var targetImageOpts = new Option<bool>("--target-image-opts") { Description = "The output is key=value options (driver=qcow2,file.filename=out.qcow2); needs -n" };
        var copyOnRead = new Option<bool>("--copy-on-read") { Description = "Write data read from a backing chain into the overlay" };
        var cmd = new Command("convert", "Convert or copy an image into a local file")
        {
            files, format, imageOpts, outputFormat, progress, noCreate, parallel, outOfOrder, sparse, cache, sourceCache, copyOnRead, compress, createOptions,
            targetIsZero, backing, backingFormat, targetImageOpts,
        };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            bool outFmtGiven = r.GetResult(outputFormat) is { Implicit: false };
            string outFmt = r.GetValue(outputFormat)!;
            if (CreateOptionsHelp.Asked(r.GetValue(createOptions)))
            {
                Console.Out.Write(CreateOptionsHelp.For(outFmt) ?? throw new OptionException($"-O {outFmt}: output format not supported; allowed: raw, qcow2, vmdk, vpc"));
                return 0;
            }

            string[] names = r.GetValue(files) ?? [];

            // The file list takes any word, so a mistyped flag lands in it: name it as the parser does elsewhere.
            if (!r.Tokens.Any(t => t.Type == System.CommandLine.Parsing.TokenType.DoubleDash)
                && names.FirstOrDefault(n => n.Length > 1 && n[0] == '-' && !File.Exists(n)) is { } flag)
            {
                throw new OptionException($"unknown option '{flag}' (see urldisk convert --help)");
            }
            if (names.Length < 2)
            {
                throw new OptionException("convert: give a source and a target (urldisk convert [options] SOURCE... TARGET)");
            }

            bool existing = r.GetValue(noCreate);
            string targetName = CliCommon.RequirePath(names[^1], "convert: target");
            string targetPath = targetName;
            if (r.GetValue(targetImageOpts))
            {
                if (!existing)
                {
                    throw new OptionException("--target-image-opts requires use of -n flag (the target must exist), as in qemu-img");
                }

                if (outFmtGiven)
                {
                    throw new OptionException("--target-image-opts and -O are mutually exclusive: give the format as driver=… in the target options");
                }

                (outFmt, targetPath) = TargetOptions(targetName);
            }

            if (outFmt is not ("raw" or "qcow2" or "vmdk" or "vpc"))
            {
                throw new OptionException($"-O {outFmt}: output format not supported; allowed: raw, qcow2, vmdk, vpc");
            }

            if (r.GetValue(targetIsZero) && !existing)
            {
                throw new OptionException("--target-is-zero requires use of -n flag, as in qemu-img (a new target is known to be zero anyway)");
            }

            CacheMode.CheckSource(r.GetValue(sourceCache));
            bool sync = CacheMode.FlushesOutput(r.GetValue(cache));

            var (optionText, taken) = CreateOptionText.Take(string.Join(',', r.GetValue(createOptions) ?? []), "preallocation", "backing_file", "backing_fmt");
            string? backingName = r.GetValue(backing) ?? taken.GetValueOrDefault("backing_file");
            string? backingFmt = r.GetValue(backingFormat) ?? taken.GetValueOrDefault("backing_fmt");
            string preallocation = taken.GetValueOrDefault("preallocation") ?? "off";
            bool compressed = r.GetValue(compress);
            if (backingName is not null)
            {
                if (outFmt != "qcow2")
                {
                    throw new OptionException($"-B: backing file not supported for output format '{outFmt}'; use -O qcow2");
                }

                if (existing)
                {
                    throw new OptionException("-B creates the output with a backing file; it cannot be used with -n");
                }

                if (string.IsNullOrEmpty(backingFmt))
                {
                    throw new OptionException("-B: use of a backing file requires an explicit backing format (-F raw or -F qcow2), as in qemu-img");
                }
            }
            else if (backingFmt is not null)
            {
                throw new OptionException("-F needs a backing file (-B)");
            }

            var vmdkOptions = outFmt == "vmdk" ? VmdkCreateOptions.Parse(optionText) : null;
            if (vmdkOptions is not null && existing)
            {
                throw new OptionException("-n: -O vmdk writes a new streamOptimized file; it cannot write into an existing one");
            }

            if (outFmt == "raw" && (compressed || optionText.Length > 0))
            {
                throw new OptionException("-c and -o (other than preallocation) need -O qcow2; raw output takes neither");
            }

            if (outFmt == "vpc" && compressed)
            {
                throw new OptionException("-c needs -O qcow2; vpc output is not compressed");
            }

            if (preallocation != "off")
            {
                if (outFmt is not ("raw" or "qcow2"))
                {
                    throw new OptionException($"-o preallocation={preallocation}: urldisk preallocates raw and qcow2 output only; use preallocation=off with -O {outFmt}");
                }

                if (compressed)
                {
                    throw new OptionException("-c: Compression and preallocation not supported at the same time (as in qemu-img)");
                }

                if (existing)
                {
                    throw new OptionException("-o preallocation applies when the target is created; it cannot be used with -n");
                }

                if (outFmt == "raw")
                {
                    FilePreallocation.Check(preallocation, "convert");
                }
            }

            var vpcOptions = outFmt == "vpc" ? Formats.Vpc.VpcCreateOptions.Parse(optionText) : null;
            var qcow2Options = outFmt == "qcow2" ? Qcow2CreateOptions.Parse(optionText.Length == 0 ? null : optionText) with { Preallocation = preallocation } : null;
            if (qcow2Options is not null && backingName is not null)
            {
                qcow2Options = qcow2Options with { BackingFile = backingName, BackingFormat = backingFmt };
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

            var context = new OpenContext { CopyOnRead = r.GetValue(copyOnRead), Writable = r.GetValue(copyOnRead) };
            await using var image = await OpenSourcesAsync(names[..^1], r.GetValue(imageOpts), r.GetValue(format), context, ct).ConfigureAwait(false);
            await using var baseImage = backingName is null ? null
                : await ImageOpener.OpenAsync(BackingName.Resolve(backingName, targetPath), backingFmt, new OpenContext(), ct).ConfigureAwait(false);
            using var bar = r.GetValue(progress) && !r.GetValue(CliCommon.Quiet) ? new ProgressBar(image.Length) : null;
            bar?.Report(0);
            bool knownZero = r.GetValue(targetIsZero);
            Task CopyAsync(IBlockDevice from, IBlockDevice to, bool targetIsZeroed, bool detectZeroes, bool ordered = false) => new ImageCopier
            {
                Parallelism = inFlight,
                TargetIsZeroed = targetIsZeroed || knownZero,
                DetectZeroes = detectZeroes,
                Base = baseImage,
                OrderedWrites = ordered,
                Progress = bar is null ? null : bar.Report,
            }.CopyAsync(from, to, ct);

            if (vmdkOptions is not null)
            {
                // streamOptimized is written front to back (grains compressed, in order), not through the copier.
                await VmdkStreamWriter.WriteAsync(image, targetPath, vmdkOptions, bar is null ? null : bar.Report, ct).ConfigureAwait(false);
            }
            else if (qcow2Options is not null)
            {
                await using var qcow2 = await Qcow2ConvertTarget.CreateAsync(targetPath, image.Length, qcow2Options, compressed, existing, ct).ConfigureAwait(false);

                // Compression works on whole clusters: chunks (cluster-aligned) are not split at zero runs.
                IBlockDevice from = compressed ? new ClusterAlignedExtents(image, qcow2.Image.ClusterSize) : image;

                // In order unless -W, as qemu-img: the new file then holds its clusters in guest order.
                await CopyAsync(from, qcow2, qcow2.IsZeroed && baseImage is null, sparseSize != 0 && !compressed, ordered: !r.GetValue(outOfOrder)).ConfigureAwait(false);
                await qcow2.CommitAsync().ConfigureAwait(false);
            }
            else if (vpcOptions is not null)
            {
                await using var vhd = Formats.Vpc.VpcFixedTarget.Create(targetPath, image.Length, vpcOptions, existing, sync);
                await CopyAsync(image, vhd, vhd.IsZeroed, sparseSize != 0).ConfigureAwait(false);
                await vhd.CommitAsync(ct).ConfigureAwait(false);
            }
            else
            {
                await using (var output = RawFileTarget.Create(targetPath, image.Length, existing, sync))
                {
                    await CopyAsync(image, output, output.IsZeroed, sparseSize != 0).ConfigureAwait(false);
                    await output.CommitAsync().ConfigureAwait(false);
                }

                Preallocate(targetPath, image.Length, preallocation);
            }

            bar?.Finish();
            return 0;
        }));
        return cmd;
    }

    /// <summary>One source, or several read one after another (qemu-img convert's several filenames).</summary>
    private static async Task<IBlockDevice> OpenSourcesAsync(string[] names, bool imageOpts, string? format, OpenContext context, CancellationToken ct)
    {
        if (names.Length == 1)
        {
            return await CliCommon.OpenAsync(names[0], imageOpts, format, context, ct).ConfigureAwait(false);
        }

        var parts = new List<IBlockDevice>();
        try
        {
            foreach (string name in names)
            {
                parts.Add(await CliCommon.OpenAsync(name, imageOpts, format, context, ct).ConfigureAwait(false));
            }
        }
        catch
        {
            foreach (var p in parts)
            {
                await p.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }

        return new ConcatenatedDevice(parts);
    }

    /// <summary>
    /// <c>--target-image-opts</c>: the target as <c>driver=FMT,file.filename=PATH</c> (file.driver=file allowed); the
    /// driver is probed from the file's first bytes when absent.
    /// </summary>
    private static (string Format, string Path) TargetOptions(string text)
    {
        var tree = SpecParser.ParseKeyValue(text);
        tree.RejectUnknown("target", ["driver", "file.driver", "file.filename"]);
        if (tree["file.driver"] is { } fileDriver && fileDriver != "file")
        {
            throw new OptionException($"--target-image-opts: file.driver={fileDriver} is not supported; the output is a local file (file.driver=file)");
        }

        string path = CliCommon.RequirePath(tree["file.filename"], "--target-image-opts: file.filename");
        string? driver = tree["driver"];
        if (driver is null)
        {
            Span<byte> magic = stackalloc byte[4];
            using var f = File.OpenHandle(path);
            driver = RandomAccess.Read(f, magic, 0) == 4 && magic.SequenceEqual((ReadOnlySpan<byte>)[0x51, 0x46, 0x49, 0xFB]) ? "qcow2" : "raw";
        }

        return (driver, path);
    }

    private static void Preallocate(string path, long length, string mode)
    {
        try
        {
            FilePreallocation.Apply(path, length, mode);
        }
        catch (Exception e) when (e is IOException or NotSupportedException)
        {
            File.Delete(path);
            throw;
        }
    }
}
