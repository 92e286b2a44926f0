namespace UrlDisk.Formats;

/// <summary>Builds extent lists for sparse formats: neighbours with the same status (and contiguous host data) merge.</summary>
internal static class ExtentRuns
{
    public static void Add(List<Extent> list, Extent e)
    {
        if (list.Count > 0)
        {
            var last = list[^1];
            bool hostContiguous = last.HostOffset is null ? e.HostOffset is null : e.HostOffset == last.HostOffset + last.Length;
            if (last.End == e.Offset && last.Flags == e.Flags && last.Depth == e.Depth && hostContiguous)
            {
                list[^1] = last with { Length = last.Length + e.Length };
                return;
            }
        }

        list.Add(e);
    }

    /// <summary>
    /// The extents of <c>[offset, offset + length)</c> that a parent image provides (one level deeper), and a hole
    /// reading as zeros past the parent's end or when there is no parent.
    /// </summary>
    public static async ValueTask AddFromParentAsync(List<Extent> list, IBlockDevice? parent, long offset, long length, CancellationToken cancellationToken)
    {
        long inParent = parent is null ? 0 : Math.Clamp(parent.Length - offset, 0, length);
        long pos = offset;
        while (pos < offset + inParent)
        {
            var below = await parent!.GetExtentsAsync(pos, offset + inParent - pos, cancellationToken).ConfigureAwait(false);
            if (below.Count == 0)
            {
                break;
            }

            foreach (var e in below)
            {
                Add(list, e with { Depth = e.Depth + 1 });
                pos = e.End;
            }
        }

        if (pos < offset + length)
        {
            Add(list, new Extent(pos, offset + length - pos, ExtentFlags.Hole | ExtentFlags.Zero, parent is null ? 0 : 1));
        }
    }

    /// <summary>Reads <paramref name="buffer"/> at <paramref name="offset"/> from a parent image; zeros past its end or without one.</summary>
    public static async ValueTask ReadFromParentAsync(IBlockDevice? parent, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int inParent = parent is null ? 0 : (int)Math.Clamp(parent.Length - offset, 0, buffer.Length);
        if (inParent > 0)
        {
            await parent!.ReadAsync(offset, buffer[..inParent], cancellationToken).ConfigureAwait(false);
        }

        buffer.Span[inParent..].Clear();
    }
}
