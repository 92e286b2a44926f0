using UrlDisk.Formats.Qcow2;
using UrlDisk.Formats.Raw;
using UrlDisk.Opening;
using UrlDisk.Sources.File;
using UrlDisk.Specs;

namespace UrlDisk.Operations;

/// <summary>
/// qemu-img resize on a local image: a raw file is truncated or extended (optionally preallocated); a qcow2
/// image grows (new L1 table when needed, refcounted) or, when shrinking is allowed, drops every cluster past
/// the new end and the file is cut after the last cluster still in use.
/// </summary>
internal static class ImageResizer
{
    public static IReadOnlyList<string> PreallocationModes { get; } = ["off", "metadata", "falloc", "full"];

    /// <summary>Resizes the image <paramref name="spec"/> (a local file at <paramref name="path"/>); returns the old and new sizes.</summary>
    /// <param name="newSize">The new size from the old one (qemu-img's <c>+N</c>, <c>-N</c> or <c>N</c>).</param>
    public static async Task<(long Old, long New)> ResizeAsync(OptionTree spec, string path, string? format, Func<long, long> newSize, bool shrink, string preallocation, CancellationToken cancellationToken)
    {
        if (!PreallocationModes.Contains(preallocation))
        {
            throw new OptionException($"--preallocation: '{preallocation}' is not allowed; use off, metadata, falloc or full");
        }

        if (spec.Contains("offset") || spec.Contains("size"))
        {
            throw new OptionException("resize: a raw window (offset=, size=) cannot be resized; resize the file itself");
        }

        long old, size, fileEnd = -1;
        bool raw;
        IReadOnlyList<(long Offset, long Length)> preallocated = [];
        await using (var image = await ImageOpener.OpenAsync(spec, format, new OpenContext { Writable = true, BaseLocation = path }, cancellationToken).ConfigureAwait(false))
        {
            old = image.Length;
            size = newSize(old);
            if (size < 0)
            {
                throw new OptionException($"resize: the new size {size} is negative (the image is {old} bytes)");
            }

            if (size < old && !shrink)
            {
                throw new OptionException($"resize: the new size {size} is smaller than the image ({old} bytes); give --shrink to cut the data past {size} (shrink the file systems inside first)");
            }

            if (size < old && preallocation != "off")
            {
                throw new OptionException("resize: --preallocation can't be used for shrinking an image");
            }

            switch (image)
            {
                case Qcow2Image q when q.Info.CanWrite:
                    if (preallocation != "off" && q.BackingFileName is not null && !q.ExtendedL2)
                    {
                        throw new OptionException("resize: Backing file and preallocation can only be used at the same time if extended_l2 is on (as in qemu-img)");
                    }

                    raw = false;
                    long used = await q.ResizeAsync(size, cancellationToken).ConfigureAwait(false);
                    fileEnd = size < old ? used : -1;
                    if (preallocation != "off" && size > old)
                    {
                        preallocated = await q.PreallocateAsync(old, size, cancellationToken).ConfigureAwait(false);
                    }

                    break;
                case RawImage { Info.Child: FileSource }:
                    if (preallocation == "metadata")
                    {
                        throw new OptionException("resize: Unsupported preallocation mode: metadata (raw files take off, falloc or full)");
                    }

                    raw = true;
                    break;
                case Qcow2Image or RawImage:
                    throw new OptionException($"resize: '{Redact.Spec(path)}' cannot be written here (a compressed file, or a device without write access); only plain local raw and qcow2 files can be resized");
                default:
                    throw new OptionException($"resize: images in the {image.Info.Driver} format cannot be resized; raw and qcow2 can");
            }
        }

        if (raw)
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, FileOptions.Asynchronous);
            try
            {
                RandomAccess.SetLength(handle, size);
            }
            catch (Exception e) when (e is IOException or ArgumentException)
            {
                throw new IOException($"resize: cannot make '{path}' {size} bytes: {e.Message}", e);
            }

            await FilePreallocation.ApplyAsync(handle, old, size - old, preallocation, cancellationToken).ConfigureAwait(false);
            RandomAccess.FlushToDisk(handle);
        }
        else if (preallocated.Count > 0)
        {
            // The new data clusters were mapped, not written: the file must reach them; falloc/full reserve or zero them.
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, FileOptions.Asynchronous);
            long end = preallocated.Max(r => r.Offset + r.Length);
            if (RandomAccess.GetLength(handle) < end)
            {
                RandomAccess.SetLength(handle, end);
            }

            foreach (var (offset, length) in preallocation == "metadata" ? [] : preallocated)
            {
                await FilePreallocation.ApplyAsync(handle, offset, length, preallocation, cancellationToken).ConfigureAwait(false);
            }

            RandomAccess.FlushToDisk(handle);
        }
        else if (fileEnd >= 0 && fileEnd < new FileInfo(path).Length)
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
            RandomAccess.SetLength(handle, fileEnd);
        }

        return (old, size);
    }
}
