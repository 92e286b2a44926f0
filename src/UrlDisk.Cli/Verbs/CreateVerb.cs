using System.CommandLine;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk create -f qcow2 [-b BACKING -F FMT] [-o …] FILE [SIZE]</c>, as qemu-img create.</summary>
internal static class CreateVerb
{
    public static Command Create()
    {
        var filename = new Argument<string?>("filename") { Description = "Path of the new image", Arity = ArgumentArity.ZeroOrOne };
        var size = new Argument<string?>("size") { Description = "Virtual size (e.g. 10G; or -o size=); taken from the backing file when absent", Arity = ArgumentArity.ZeroOrOne };
        var format = new Option<string>("--format", "-f") { Description = "Format of the new image: qcow2 or raw", DefaultValueFactory = _ => "raw" };
        var backing = new Option<string?>("--backing", "-b") { Description = "Backing file (path, URL or json: spec), stored as given" };
        var backingFormat = new Option<string?>("--backing-format", "-F") { Description = "Format of the backing file (raw or qcow2)" };
        var options = new Option<string[]>("-o") { Description = "Format options (-o help lists them): size, backing_file, backing_fmt, preallocation (off, falloc, full; qcow2 also metadata), cluster_size, compat (1.1 or 0.10), compression_type (zlib or zstd), refcount_bits, extended_l2, lazy_refcounts", AllowMultipleArgumentsPerToken = false };
        var unsafeBacking = new Option<bool>("-u") { Description = "Do not open the backing file (it is opened only to take the size when SIZE is absent)" };
        var cmd = new Command("create", "Create a new empty image") { filename, size, format, backing, backingFormat, options, unsafeBacking };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string fmt = r.GetValue(format)!;
            if (CreateOptionsHelp.Asked(r.GetValue(options)))
            {
                Console.Out.Write(CreateOptionsHelp.For(fmt) is { } list && fmt is "qcow2" or "raw" ? list : throw new OptionException($"create: format '{fmt}' is not supported; use qcow2 or raw"));
                return 0;
            }

            string path = CliCommon.RequirePath(r.GetValue(filename), "create: filename");
            var (optionText, taken) = CreateOptionText.Take(string.Join(',', r.GetValue(options) ?? []), "size", "backing_file", "backing_fmt", "preallocation");

            // As qemu-img: -b/-F win over -o backing_file/backing_fmt; the size may be given once only.
            if (r.GetValue(size) is not null && taken.ContainsKey("size"))
            {
                throw new OptionException("create: the image size must be specified only once (SIZE or -o size=…), as in qemu-img");
            }

            string? sizeText = r.GetValue(size) ?? taken.GetValueOrDefault("size");
            string? backingName = r.GetValue(backing) ?? taken.GetValueOrDefault("backing_file");
            string? backingFmt = r.GetValue(backingFormat) ?? taken.GetValueOrDefault("backing_fmt");
            string? preallocation = taken.GetValueOrDefault("preallocation");
            if (fmt is not ("qcow2" or "raw"))
            {
                throw new OptionException($"create: format '{fmt}' is not supported; use qcow2 or raw");
            }

            long bytes;
            if (sizeText is not null)
            {
                if (!SizeParser.TryParse(sizeText, out bytes))
                {
                    throw new OptionException(SizeParser.Error("create: size", sizeText));
                }
            }
            else if (backingName is not null && !r.GetValue(unsafeBacking))
            {
                // As qemu-img: the size of the backing file, resolved against the new image's location.
                var context = new OpenContext { BaseLocation = path };
                string location = BackingName.Resolve(backingName, path);
                await using var b = await ImageOpener.OpenAsync(location, backingFmt, context with { BaseLocation = null }, ct).ConfigureAwait(false);
                bytes = b.Length;
            }
            else
            {
                throw new OptionException("create: give the image size (or a backing file to take it from, without -u)");
            }

            if (fmt == "raw")
            {
                if (backingName is not null || optionText.Length > 0)
                {
                    throw new OptionException("create: raw images take no backing file; their -o options are size and preallocation (off, falloc, full)");
                }

                string mode = Operations.FilePreallocation.Check(preallocation, "create");
                CreateRaw(path, bytes);
                try
                {
                    // qemu-img allocates the first block of a new raw file (so O_DIRECT alignment can be probed): the same here.
                    Operations.FilePreallocation.AllocateFirstBlock(path, bytes);
                    Operations.FilePreallocation.Apply(path, bytes, mode);
                }
                catch (Exception e) when (e is IOException or NotSupportedException)
                {
                    File.Delete(path);
                    throw;
                }

                if (!r.GetValue(CliCommon.Quiet))
                {
                    string preallocationPart = preallocation is null ? "" : $" preallocation={preallocation}";
                    Console.Out.WriteLine($"Formatting '{path}', fmt=raw size={bytes}{preallocationPart}");
                }

                return 0;
            }

            var o = Qcow2CreateOptions.Parse(optionText.Length == 0 ? null : optionText) with { Preallocation = preallocation ?? "off" };
            if (backingName is not null)
            {
                o = o with { BackingFile = backingName, BackingFormat = backingFmt };
            }
            else if (backingFmt is not null)
            {
                throw new OptionException("create: -F needs a backing file (-b)");
            }

            await Qcow2Creator.CreateAsync(path, bytes, o, ct).ConfigureAwait(false);
            string backingPart = o.BackingFile is null ? "" : $" backing_file={Specs.Redact.Spec(o.BackingFile)} backing_fmt={o.BackingFormat}";
            if (o.BackingFile is not null && Specs.Redact.Spec(o.BackingFile) != o.BackingFile)
            {
                Console.Error.WriteLine("urldisk: note: the backing file name holds credentials and is stored as given in the image; prefer password-file in a json: spec");
            }

            if (!r.GetValue(CliCommon.Quiet))
            {
                string preallocationText = preallocation is null ? "" : $" preallocation={preallocation}";
                Console.Out.WriteLine($"Formatting '{path}', fmt=qcow2 cluster_size={o.ClusterSize} extended_l2={(o.ExtendedL2 ? "on" : "off")}{preallocationText} compression_type={o.CompressionType} size={bytes}{backingPart} lazy_refcounts={(o.LazyRefcounts ? "on" : "off")} refcount_bits={o.RefcountBits}");
            }

            return 0;
        }));
        return cmd;
    }

    /// <summary>A sparse file of <paramref name="bytes"/>; when the file system cannot hold that size, no file is left.</summary>
    private static void CreateRaw(string path, long bytes)
    {
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        try
        {
            f.SetLength(bytes);
        }
        catch (Exception e) when (e is ArgumentException or IOException)
        {
            f.Dispose();
            File.Delete(path);
            string why = e is ArgumentException ? "" : $" ({e.Message})";
            throw new OptionException($"create: size {bytes} bytes is more than the file system holding '{path}' allows{why}; give a smaller size");
        }
    }
}
