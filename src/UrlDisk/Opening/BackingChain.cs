using UrlDisk.Specs;

namespace UrlDisk.Opening;

/// <summary>
/// The rules of backing chains, in one place: a format names its backing image (name and format, as stored in the
/// image) and gets back a <see cref="BackingImage"/> that opens it on first use. Relative names resolve against the
/// image's own location; a remote image may not name a local file; a chain may not loop or grow deeper than
/// <see cref="OpenContext.MaxChainDepth"/>.
/// </summary>
internal static class BackingChain
{
    /// <summary>
    /// Checks <paramref name="name"/> (stored in the image opened with <paramref name="overlay"/>) against the rules and
    /// returns its lazy opener. <paramref name="driver"/> names the format in messages.
    /// </summary>
    public static BackingImage Resolve(string name, string? format, OpenContext overlay, string driver)
    {
        string location = BackingName.Resolve(name, overlay.BaseLocation);
        var chain = new HashSet<string>(overlay.Chain);
        if (overlay.BaseLocation is { } self)
        {
            chain.Add(BackingName.ChainKey(self));
        }

        RefuseLocalFromRemote(overlay.BaseLocation, location, $"{driver}: the remote image", "backing file");

        if (chain.Contains(BackingName.ChainKey(location)))
        {
            throw new ImageFormatException($"{driver}: backing chain loop: '{Redact.Spec(location)}' is already in the chain");
        }

        if (overlay.Depth + 1 > OpenContext.MaxChainDepth)
        {
            throw new ImageFormatException($"{driver}: backing chain is deeper than {OpenContext.MaxChainDepth} images");
        }

        var context = overlay with
        {
            Writable = false,
            CopyOnRead = false,
            Depth = overlay.Depth + 1,
            Chain = chain,
            BaseLocation = null,
        };
        return new BackingImage(location, string.IsNullOrEmpty(format) ? null : format, context);
    }

    /// <summary>
    /// A remote image must not make the reader open local files (their contents would leave the machine through
    /// convert or serve): refuses <paramref name="location"/> when it is local and <paramref name="referrer"/> is not.
    /// </summary>
    /// <param name="what">How the message names the referrer ("vmdk: the remote descriptor").</param>
    /// <param name="kind">How the message names the reference ("backing file", "extent").</param>
    public static void RefuseLocalFromRemote(string? referrer, string location, string what, string kind)
    {
        if (referrer is not null && !BackingName.IsLocal(referrer) && BackingName.IsLocal(location))
        {
            throw new ImageFormatException($"{what} '{Redact.Spec(referrer)}' names a local {kind} '{Redact.Spec(location)}'; refused");
        }
    }
}
