using System.CommandLine;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Operations;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary><c>urldisk dd [-f FMT] [-O raw|qcow2] [bs=N] [count=N] [skip=N] if=INPUT of=OUTPUT</c>, as qemu-img dd.</summary>
internal static class DdVerb
{
    public static Command Create()
    {
        var operands = new Argument<string[]>("operands") { Description = "if=INPUT (path, URL or json: spec), of=OUTPUT (created), bs=BLOCK_SIZE (default 512), count=BLOCKS, skip=BLOCKS", Arity = ArgumentArity.ZeroOrMore };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var outputFormat = new Option<string>("-O") { Description = "Output format: raw (default) or qcow2", DefaultValueFactory = _ => "raw" };
        var cmd = new Command("dd", """
            Copy bytes of an image into a new image, as qemu-img dd: the output holds bytes skip*bs up to count*bs of the input
            (qemu-img's rule: count counts from the start of the input, so the output is count*bs - skip*bs bytes).

            Examples:
              urldisk dd if=https://host/disk.img of=mbr.bin bs=512 count=1
              urldisk dd -O qcow2 bs=1M skip=1 count=64 if=disk.qcow2 of=part.qcow2
            """)
        { operands, format, imageOpts, outputFormat };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string? input = null, output = null;
            long blockSize = 512, count = -1, skip = 0;
            foreach (string operand in r.GetValue(operands) ?? [])
            {
                int eq = operand.IndexOf('=', StringComparison.Ordinal);
                string key = eq < 0 ? operand : operand[..eq], value = eq < 0 ? "" : operand[(eq + 1)..];
                switch (key)
                {
                    case "if": input = value; break;
                    case "of": output = value; break;
                    case "bs": blockSize = Number("bs", value, 1, int.MaxValue); break;
                    case "count": count = Number("count", value, 0, long.MaxValue); break;
                    case "skip": skip = Number("skip", value, 0, long.MaxValue); break;
                    default: throw new OptionException($"dd: unrecognized operand '{key}'; allowed: if=, of=, bs=, count=, skip=");
                }
            }

            if (string.IsNullOrEmpty(input) || string.IsNullOrEmpty(output))
            {
                throw new OptionException("dd: Must specify both input and output files (if=INPUT of=OUTPUT)");
            }

            string outFmt = r.GetValue(outputFormat)!;
            if (outFmt is not ("raw" or "qcow2"))
            {
                throw new OptionException($"-O {outFmt}: output format not supported by dd; allowed: raw, qcow2");
            }

            await using var image = await CliCommon.OpenAsync(input, r.GetValue(imageOpts), r.GetValue(format), null, ct).ConfigureAwait(false);
            long end = image.Length;
            if (count >= 0 && count <= long.MaxValue / blockSize && count * blockSize < end)
            {
                end = count * blockSize;
            }

            if (skip > long.MaxValue / blockSize || skip * blockSize > image.Length)
            {
                throw new UrlDiskException($"dd: {InfoVerb.DisplayFilename(input)}: cannot skip to specified offset (skip={skip} blocks of {blockSize} bytes is past its end, {image.Length} bytes)");
            }

            long start = skip * blockSize;
            long length = Math.Max(0, end - start);
            long outputSize = (length + 511) & ~511L; // images are whole 512-byte sectors, as qemu-img creates them
            await using var window = new ByteWindow(image, Math.Min(start, image.Length), length);
            if (outFmt == "qcow2")
            {
                await using var qcow2 = await Qcow2ConvertTarget.CreateAsync(output, outputSize, Qcow2CreateOptions.Parse(null), compress: false, existing: false, ct).ConfigureAwait(false);
                await new ImageCopier { TargetIsZeroed = qcow2.IsZeroed }.CopyAsync(window, qcow2, ct).ConfigureAwait(false);
                await qcow2.CommitAsync().ConfigureAwait(false);
            }
            else
            {
                await using var raw = RawFileTarget.Create(output, outputSize, existing: false);
                await new ImageCopier { TargetIsZeroed = raw.IsZeroed }.CopyAsync(window, raw, ct).ConfigureAwait(false);
                await raw.CommitAsync().ConfigureAwait(false);
            }

            return 0;
        }));
        return cmd;
    }

    private static long Number(string name, string text, long min, long max)
    {
        if (!SizeParser.TryParse(text, out long n))
        {
            throw new OptionException(SizeParser.Error($"dd: {name}", text));
        }

        if (n < min || n > max)
        {
            throw new OptionException($"dd: {name}={text} is not allowed; use {min} to {max}");
        }

        return n;
    }
}
