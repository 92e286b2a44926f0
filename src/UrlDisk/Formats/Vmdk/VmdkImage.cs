using UrlDisk.Opening;

namespace UrlDisk.Formats.Vmdk;

/// <summary>
/// A VMDK: its extents laid end to end (sparse, flat or zero), and for a differencing disk the parent named by
/// <c>parentFileNameHint</c>, read where a sparse extent has no grain. Read-only.
/// </summary>
internal sealed class VmdkImage : BlockDevice, IHasBacking
{
    private readonly VmdkExtent[] _extents;
    private readonly long[] _starts;
    private readonly IBlockDevice _file;
    private readonly BackingImage? _backing;
    private readonly long _length;

    internal VmdkImage(IBlockDevice file, VmdkDescriptor? descriptor, IReadOnlyList<(VmdkExtent Extent, string Name, string Format)> extents, BackingImage? backing)
    {
        _file = file;
        _extents = [.. extents.Select(e => e.Extent)];
        _starts = new long[_extents.Length];
        long total = 0;
        for (int i = 0; i < _extents.Length; i++)
        {
            _starts[i] = total;
            total += _extents[i].Length;
        }

        _length = total;
        _backing = backing;
        Descriptor = descriptor;
        int grain = _extents.OfType<SparseExtent>().Select(e => (int)e.GrainBytes).DefaultIfEmpty(65536).Max();
        Info = new BlockDeviceInfo
        {
            Driver = "vmdk",
            DisplayName = file.Info.DisplayName,
            ReportsAllocation = true,
            PreferredBlockSize = grain,
            Details = BuildDetails(descriptor, extents, backing),
            Child = file,
        };
    }

    /// <summary>qemu-img info's facts: the first extent's cluster size, the parent hint, and the descriptor as format-specific data.</summary>
    private static Dictionary<string, object?> BuildDetails(VmdkDescriptor? descriptor, IReadOnlyList<(VmdkExtent Extent, string Name, string Format)> extents, BackingImage? backing)
    {
        var described = extents.Select(e => e.Extent.Describe(e.Name, e.Format)).ToList();
        var d = new Dictionary<string, object?>();
        if (described.Count > 0 && described[0].TryGetValue("cluster-size", out var clusterSize))
        {
            d["cluster-size"] = clusterSize;
        }

        if (descriptor?.ParentFileNameHint is { } hint)
        {
            d["backing-filename"] = Specs.Redact.Spec(hint);
            if (backing is not null)
            {
                d["full-backing-filename"] = Specs.Redact.Spec(backing.Location);
            }

            // A vmdk parent is always a vmdk (the descriptor names no format); qemu-img reports it so.
            d["backing-filename-format"] = "vmdk";
        }

        d["format-specific"] = new Dictionary<string, object?>
        {
            ["cid"] = descriptor?.Cid ?? VmdkDescriptor.NoParent,
            ["parent-cid"] = descriptor?.ParentCid ?? VmdkDescriptor.NoParent,
            ["create-type"] = descriptor?.CreateType,
            ["extents"] = described.Select(x => (IReadOnlyDictionary<string, object?>)x).ToList(),
        };
        return d;
    }

    public override long Length => _length;

    /// <summary>The extents in disk order.</summary>
    internal IReadOnlyList<VmdkExtent> Extents => _extents;

    public override BlockDeviceInfo Info { get; }

    /// <summary>The descriptor (embedded or a file of its own), when there is one.</summary>
    public VmdkDescriptor? Descriptor { get; }

    /// <summary>Where the parent of a differencing disk is opened from.</summary>
    public string? BackingLocation => _backing?.Location;

    /// <summary>Opens the parent (once) and returns it; null when there is none.</summary>
    public ValueTask<IBlockDevice?> GetBackingAsync(CancellationToken cancellationToken = default)
        => _backing is null ? ValueTask.FromResult<IBlockDevice?>(null) : _backing.GetAsync(cancellationToken);

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (buffer.Length > 0)
        {
            int i = ExtentAt(offset);
            long within = offset - _starts[i];
            int n = (int)Math.Min(buffer.Length, _extents[i].Length - within);
            if (_backing is null)
            {
                await _extents[i].ReadAsync(within, buffer[..n], cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await ReadOverParentAsync(_extents[i], _starts[i], within, buffer[..n], cancellationToken).ConfigureAwait(false);
            }

            offset += n;
            buffer = buffer[n..];
        }
    }

    private async ValueTask ReadOverParentAsync(VmdkExtent extent, long start, long within, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (buffer.Length > 0)
        {
            var runs = await extent.MapAsync(within, buffer.Length, cancellationToken).ConfigureAwait(false);
            foreach (var run in runs)
            {
                int n = (int)run.Length;
                if (run.IsHole)
                {
                    await ReadParentAsync(start + run.Offset, buffer[..n], cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await extent.ReadAsync(run.Offset, buffer[..n], cancellationToken).ConfigureAwait(false);
                }

                within += n;
                buffer = buffer[n..];
            }
        }
    }

    private async ValueTask ReadParentAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var parent = await _backing!.GetAsync(cancellationToken).ConfigureAwait(false);
        await ExtentRuns.ReadFromParentAsync(parent, offset, buffer, cancellationToken).ConfigureAwait(false);
    }

    protected override async ValueTask<IReadOnlyList<Extent>> GetExtentsCoreAsync(long offset, long length, CancellationToken cancellationToken)
    {
        int i = ExtentAt(offset);
        long within = offset - _starts[i];
        var runs = await _extents[i].MapAsync(within, Math.Min(length, _extents[i].Length - within), cancellationToken).ConfigureAwait(false);
        var list = new List<Extent>();
        foreach (var run in runs)
        {
            var e = run with { Offset = run.Offset + _starts[i] };
            if (!e.IsHole || _backing is null)
            {
                ExtentRuns.Add(list, e);
                continue;
            }

            var parent = await _backing.GetAsync(cancellationToken).ConfigureAwait(false);
            await ExtentRuns.AddFromParentAsync(list, parent, e.Offset, e.Length, cancellationToken).ConfigureAwait(false);
        }

        return list;
    }

    private int ExtentAt(long offset)
    {
        int i = Array.BinarySearch(_starts, offset);
        i = i >= 0 ? i : ~i - 1;
        // Skip empty extents (0 sectors) that share a start with the next one.
        while (i < _extents.Length - 1 && offset >= _starts[i] + _extents[i].Length)
        {
            i++;
        }

        return i;
    }

    protected override async ValueTask DisposeCoreAsync()
    {
        foreach (var e in _extents)
        {
            await e.DisposeAsync().ConfigureAwait(false);
        }

        if (!_extents.Any(e => ReferenceEquals(e.File, _file)))
        {
            await _file.DisposeAsync().ConfigureAwait(false);
        }

        if (_backing is not null)
        {
            await _backing.DisposeAsync().ConfigureAwait(false);
        }
    }
}
