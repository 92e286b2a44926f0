using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Formats.Vmdk;

/// <summary>
/// Finds and opens the file of an extent named in a descriptor: relative to the descriptor's own location (a URL
/// or a path), as qcow2 backing names are, keeping the URL's query (vSphere's <c>?dcPath=…&amp;dsName=…</c> names the
/// datastore, not the file) and the descriptor's protocol options (TLS, cookies, headers).
/// </summary>
internal static class ExtentLocation
{
    public static string Resolve(string name, string? descriptorLocation)
    {
        if (descriptorLocation is not null && ImageOpener.SchemeOf(descriptorLocation) is not null && !IsAbsolute(name))
        {
            int q = descriptorLocation.IndexOf('?', StringComparison.Ordinal);
            if (q >= 0)
            {
                string query = descriptorLocation[q..];
                int hash = query.IndexOf('#', StringComparison.Ordinal);
                if (hash >= 0)
                {
                    query = query[..hash];
                }

                return BackingName.Resolve(name, descriptorLocation[..q]) + query;
            }
        }

        try
        {
            return BackingName.Resolve(name, descriptorLocation);
        }
        catch (ImageFormatException)
        {
            throw new ImageFormatException($"vmdk: cannot open the extent '{Redact.Spec(name)}': the descriptor has no location to resolve it against");
        }
    }

    public static async ValueTask<IBlockDevice> OpenAsync(string name, OpenContext context, CancellationToken cancellationToken)
    {
        string location = Resolve(name, context.BaseLocation);
        BackingChain.RefuseLocalFromRemote(context.BaseLocation, location, "vmdk: the remote descriptor", "extent");

        var readOnly = context with { Writable = false, CopyOnRead = false };
        if (!IsAbsolute(name) && context.BaseProtocolNode is { } node && (node["url"] ?? node["filename"]) == context.BaseLocation)
        {
            var extentNode = node.Clone();
            extentNode[extentNode.Contains("url") ? "url" : "filename"] = location;
            return await ImageOpener.OpenProtocolAsync(extentNode, readOnly, cancellationToken).ConfigureAwait(false);
        }

        var tree = SpecParser.ParseFilename(location);
        if (!tree.HasChild("file") || tree.Contains("driver"))
        {
            throw new ImageFormatException($"vmdk: extent '{Redact.Spec(name)}' must name a file or URL, not a format node");
        }

        return await ImageOpener.OpenProtocolAsync(tree.Child("file"), readOnly, cancellationToken).ConfigureAwait(false);
    }

    private static bool IsAbsolute(string name)
        => name.StartsWith("json:", StringComparison.Ordinal) || BackingName.HasProtocol(name) || Path.IsPathRooted(name);
}
