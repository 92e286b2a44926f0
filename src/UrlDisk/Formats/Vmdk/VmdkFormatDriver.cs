using System.Buffers.Binary;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Formats.Vmdk;

/// <summary>
/// The vmdk format: a hosted sparse file (monolithicSparse, streamOptimized; "KDMV") or a text descriptor whose
/// extents (sparse, flat, zero; split in 2 GiB pieces or not, vSphere's <c>-flat.vmdk</c>) are opened beside it.
/// </summary>
internal sealed class VmdkFormatDriver : IFormatDriver
{
    private const uint CowdMagic = 0x44574F43; // "COWD": VMware's older ESX sparse format

    public string Name => "vmdk";

    public IReadOnlyCollection<string> OptionNames { get; } = [];

    public int Probe(ReadOnlySpan<byte> head)
        => VmdkSparseHeader.HasMagic(head)
            || (head.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(head) == CowdMagic)
            || VmdkDescriptor.Looks(head) ? 100 : 0;

    public async ValueTask<IBlockDevice> OpenAsync(IBlockDevice file, OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        node.RejectUnknown(Name, OptionNames);
        var head = new byte[(int)Math.Min(file.Length, 512)];
        await file.ReadAsync(0, head, cancellationToken).ConfigureAwait(false);
        if (head.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(head) == CowdMagic)
        {
            throw new ImageFormatException("vmdk: the COWD (ESX 2 / VMware 3 sparse) format is not supported");
        }

        return VmdkSparseHeader.HasMagic(head)
            ? await OpenSparseFileAsync(file, context, cancellationToken).ConfigureAwait(false)
            : await OpenDescriptorFileAsync(file, context, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One sparse file with its descriptor embedded: the file is the only extent (the descriptor's extent line names the file itself).</summary>
    private static async ValueTask<IBlockDevice> OpenSparseFileAsync(IBlockDevice file, OpenContext context, CancellationToken cancellationToken)
    {
        string name = file.Info.DisplayName ?? context.BaseLocation ?? "image";
        var extent = await SparseExtent.OpenAsync(file, Redact.Spec(name), null, cancellationToken).ConfigureAwait(false);
        VmdkDescriptor? descriptor = null;
        var h = extent.Header;
        if (h.DescriptorOffset != 0 && h.DescriptorSize != 0)
        {
            long at = (long)Math.Min(h.DescriptorOffset, (ulong)file.Length) * 512;
            int size = (int)Math.Min(h.DescriptorSize, VmdkDescriptor.MaxBytes / 512) * 512;
            if (at > file.Length || size > file.Length - at)
            {
                throw new ImageFormatException($"vmdk: the embedded descriptor (sector {h.DescriptorOffset}, {h.DescriptorSize} sectors) is past the end of the file ({file.Length} bytes)");
            }

            var bytes = new byte[size];
            await file.ReadAsync(at, bytes, cancellationToken).ConfigureAwait(false);
            if (!VmdkDescriptor.TryParse(bytes, out descriptor, out string? error))
            {
                throw new ImageFormatException($"vmdk: embedded descriptor at offset {at}: {error}");
            }
        }

        return new VmdkImage(file, descriptor, [(extent, Redact.Spec(name), "")], Parent(descriptor, context));
    }

    private static async ValueTask<IBlockDevice> OpenDescriptorFileAsync(IBlockDevice file, OpenContext context, CancellationToken cancellationToken)
    {
        if (file.Length > VmdkDescriptor.MaxBytes)
        {
            throw new ImageFormatException($"vmdk: the file is neither a sparse extent (no KDMV magic) nor a descriptor (it is {file.Length} bytes; descriptors are at most {VmdkDescriptor.MaxBytes})");
        }

        var bytes = new byte[file.Length];
        await file.ReadAsync(0, bytes, cancellationToken).ConfigureAwait(false);
        if (!VmdkDescriptor.TryParse(bytes, out var descriptor, out string? error))
        {
            throw new ImageFormatException($"vmdk: {error}");
        }

        if (descriptor.Extents.Count == 0)
        {
            throw new ImageFormatException("vmdk: the descriptor has no extent lines");
        }

        long total = 0;
        foreach (var line in descriptor.Extents)
        {
            total += line.Sectors * 512;
            if (total < 0 || total > long.MaxValue / 2)
            {
                throw new ImageFormatException("vmdk: the extents add up to more than the largest disk allowed");
            }
        }

        var extents = new List<(VmdkExtent, string, string)>();
        try
        {
            foreach (var line in descriptor.Extents)
            {
                extents.Add((await OpenExtentAsync(line, context, cancellationToken).ConfigureAwait(false), line.FileName is null ? "" : Redact.Spec(ExtentLocation.Resolve(line.FileName, context.BaseLocation)), line.Type));
            }

            return new VmdkImage(file, descriptor, extents, Parent(descriptor, context));
        }
        catch
        {
            foreach (var (e, _, _) in extents)
            {
                await e.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    private static async ValueTask<VmdkExtent> OpenExtentAsync(VmdkExtentLine line, OpenContext context, CancellationToken cancellationToken)
    {
        if (line.Access == "NOACCESS")
        {
            throw new ImageFormatException($"vmdk: NOACCESS extents are not supported ('{Redact.Spec(line.FileName ?? "")}')");
        }

        long length = line.Sectors * 512;
        if (line.Type == "ZERO")
        {
            return new ZeroExtent(length);
        }

        if (line.Type is not ("SPARSE" or "FLAT" or "VMFS"))
        {
            throw new ImageFormatException($"vmdk: extent type {line.Type} is not supported; supported: SPARSE, FLAT, VMFS, ZERO");
        }

        string name = Redact.Spec(line.FileName!);
        var file = await ExtentLocation.OpenAsync(line.FileName!, context, cancellationToken).ConfigureAwait(false);
        try
        {
            return line.Type == "SPARSE"
                ? await SparseExtent.OpenAsync(file, name, length, cancellationToken).ConfigureAwait(false)
                : new FlatExtent(file, line.Type == "FLAT" ? line.Offset * 512 : 0, length, name);
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The parent of a differencing disk (parentCID set and a parentFileNameHint), opened on first use.</summary>
    private static BackingImage? Parent(VmdkDescriptor? descriptor, OpenContext context)
        => descriptor is { ParentCid: not VmdkDescriptor.NoParent, ParentFileNameHint: { Length: > 0 } hint } && !context.NoBacking
            ? BackingChain.Resolve(hint, null, context, "vmdk")
            : null;
}
