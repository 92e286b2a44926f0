namespace UrlDisk.Cli.Verbs;

/// <summary>The image and each backing image below it (any format with a parent), by depth, with the names qemu-img shows for them.</summary>
internal static class BackingChain
{
    public static async Task<List<(string Name, IBlockDevice Device)>> WalkAsync(IBlockDevice image, string topName, CancellationToken ct)
    {
        var chain = new List<(string, IBlockDevice)> { (topName, image) };
        IBlockDevice? current = image;
        while (current is IHasBacking q && q.BackingLocation is { } location && chain.Count <= UrlDisk.Opening.OpenContext.MaxChainDepth)
        {
            current = await q.GetBackingAsync(ct).ConfigureAwait(false);
            if (current is null)
            {
                break;
            }

            chain.Add((InfoVerb.DisplayFilename(location), current));
        }

        return chain;
    }
}
