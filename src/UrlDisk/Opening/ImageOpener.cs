using UrlDisk.Sources.Http;
using UrlDisk.Specs;

namespace UrlDisk.Opening;

/// <summary>
/// Spec → graph: a format node (named by <c>driver=</c>, or probed) over a protocol node (<c>file.*</c>),
/// or a bare protocol node used as it is, as QEMU does.
/// </summary>
public static class ImageOpener
{
    /// <summary>Opens a positional spec: a path, a URL or <c>json:{…}</c>.</summary>
    public static ValueTask<IBlockDevice> OpenAsync(string spec, string? format = null, OpenContext? context = null, CancellationToken cancellationToken = default)
        => OpenAsync(SpecParser.ParseFilename(spec), format, context, cancellationToken);

    /// <summary>
    /// Opens an http or https URL from typed options (headers, tokens, timeouts … from code rather than a spec string);
    /// the format is <paramref name="format"/>, or probed.
    /// </summary>
    public static async ValueTask<IBlockDevice> OpenAsync(HttpSourceOptions http, string? format = null, OpenContext? context = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(http);
        context ??= new OpenContext();
        string scheme = http.Url.Scheme.ToLowerInvariant();
        if (scheme is not ("http" or "https") || !string.IsNullOrEmpty(http.Url.UserInfo))
        {
            throw new OptionException($"HttpSourceOptions.Url must be an http:// or https:// URL without user info (set Username and Password): '{Redact.Url(http.Url.ToString())}'");
        }

        foreach (var header in http.Headers)
        {
            HttpHeaderLines.Check(header, "HttpSourceOptions.Headers");
        }

        IFormatDriver? formatDriver = null;
        if (format is not null)
        {
            formatDriver = Drivers.FindFormat(format) ?? throw new OptionException($"unknown format '{format}'; formats: {Drivers.FormatNames}");
        }

        // The layers' options come from the typed ones, so both paths stack the same layers.
        var layerNode = new OptionTree();
        layerNode["readahead"] = http.Readahead.ToString(System.Globalization.CultureInfo.InvariantCulture);
        layerNode["cache-size"] = http.CacheSize.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var layers = LayerStack.Plan(layerNode, Drivers.FindProtocol(scheme)!, Drivers.Layers);
        var source = await HttpDriver.OpenAsync(scheme, http, context, cancellationToken).ConfigureAwait(false);
        var file = await layers.StackAsync(source, new LayerContext(scheme, context), cancellationToken).ConfigureAwait(false);
        context = context with { BaseLocation = http.Url.ToString() };
        try
        {
            return formatDriver is null
                ? await ProbeAndOpenFormatAsync(file, new OptionTree(), context, cancellationToken).ConfigureAwait(false)
                : await formatDriver.OpenAsync(file, new OptionTree(), context, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Opens an option tree (from any spec form). <paramref name="format"/> is <c>-f</c>.</summary>
    internal static async ValueTask<IBlockDevice> OpenAsync(OptionTree root, string? format = null, OpenContext? context = null, CancellationToken cancellationToken = default)
    {
        context ??= new OpenContext();
        root = root.Clone();
        string? driver = root["driver"];
        if (driver is not null && format is not null && driver != format)
        {
            throw new OptionException($"-f {format} contradicts driver={driver} in the spec");
        }

        driver ??= format;

        // A top-level url/filename without file.* is a protocol node of its own.
        if (!root.HasChild("file") && (root.Contains("url") || root.Contains("filename")) && (driver is null || Drivers.FindProtocol(driver) is not null))
        {
            var protocolNode = root.Clone();
            protocolNode["driver"] = driver;
            var device = await OpenProtocolAsync(protocolNode, context, cancellationToken).ConfigureAwait(false);
            return driver is null ? await ProbeAndOpenFormatAsync(device, new OptionTree(), WithBase(context, protocolNode), cancellationToken).ConfigureAwait(false) : device;
        }

        if (driver is not null && Drivers.FindProtocol(driver) is not null)
        {
            return await OpenProtocolAsync(root, context, cancellationToken).ConfigureAwait(false);
        }

        IFormatDriver? formatDriver = null;
        if (driver is not null)
        {
            formatDriver = Drivers.FindFormat(driver)
                ?? throw new OptionException($"unknown driver '{driver}'; formats: {Drivers.FormatNames}; protocols: {Drivers.ProtocolNames}");
        }

        if (!root.HasChild("file"))
        {
            throw new OptionException($"the spec names no image: give file.driver and file.url (or file.filename)");
        }

        var formatNode = new OptionTree(root.Pairs.Where(p => !p.Key.StartsWith("file.", StringComparison.Ordinal) && p.Key != "driver"));
        var file = await OpenProtocolAsync(root.Child("file"), context, cancellationToken).ConfigureAwait(false);
        context = WithBase(context, root.Child("file"));
        try
        {
            return formatDriver is null
                ? await ProbeAndOpenFormatAsync(file, formatNode, context, cancellationToken).ConfigureAwait(false)
                : await OpenNamedFormatAsync(formatDriver, file, formatNode, context, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Opens a protocol node; <c>filename</c> picks the driver from its scheme when <c>driver</c> is absent.</summary>
    internal static async ValueTask<IBlockDevice> OpenProtocolAsync(OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        node = node.Clone();
        string? filename = node["filename"];
        string? driverName = node["driver"];
        node["driver"] = null;
        IProtocolDriver driver;
        if (driverName is not null)
        {
            driver = Drivers.FindProtocol(driverName)
                ?? throw new OptionException($"unknown protocol driver '{driverName}'; known: {Drivers.ProtocolNames}");
        }
        else if (filename is not null)
        {
            string scheme = SchemeOf(filename) ?? "file";
            driver = Drivers.FindByScheme(scheme)
                ?? throw new OptionException($"unknown protocol '{scheme}' in '{Redact.Url(filename)}'; known: {Drivers.ProtocolNames}");
        }
        else
        {
            throw new OptionException($"option '{node.Path}driver' is required (one of {Drivers.ProtocolNames})");
        }

        if (filename is not null)
        {
            node["filename"] = null;
            string key = driver.OptionNames.Contains("url") ? "url" : "filename";
            if (node.Contains(key))
            {
                throw new OptionException($"both '{node.Path}filename' and '{node.Path}{key}' are given; use one");
            }

            node[key] = filename;
        }

        var layers = LayerStack.Plan(node, driver, Drivers.Layers);
        var source = await driver.OpenAsync(layers.SourceNode, context, cancellationToken).ConfigureAwait(false);
        return await layers.StackAsync(source, new LayerContext(driver.Name, context), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads the first bytes and picks the format that claims them most surely (raw when none does).</summary>
    internal static async ValueTask<IBlockDevice> ProbeAndOpenFormatAsync(IBlockDevice file, OptionTree formatNode, OpenContext context, CancellationToken cancellationToken)
    {
        var head = await ReadHeadAsync(file, cancellationToken).ConfigureAwait(false);
        if (Layers.Compressed.CompressedLayer.Detect(head) is { } compression)
        {
            // Probing sees the decompressed bytes: x.qcow2.xz is a qcow2 image.
            var layer = await Layers.Compressed.CompressedLayer.OpenAsync(file, compression, context, cancellationToken).ConfigureAwait(false);
            try
            {
                return await ProbeAndOpenFormatAsync(layer, formatNode, context, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await layer.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        IFormatDriver best = Drivers.FindFormat("raw")!;
        int bestScore = 1;
        foreach (var f in Drivers.Formats)
        {
            int score = f.Probe(head);
            if (score > bestScore)
            {
                best = f;
                bestScore = score;
            }
        }

        if (bestScore == 1 && await Formats.Vpc.VpcFormatDriver.HasFixedFooterAsync(file, cancellationToken).ConfigureAwait(false))
        {
            best = Drivers.FindFormat("vpc")!;
        }

        return await best.OpenAsync(file, formatNode, context, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A named format other than raw also sees decompressed bytes (<c>-F qcow2</c> for a <c>.qcow2.xz</c> backing
    /// file); <c>raw</c> keeps the file's own bytes, so a compressed file can still be copied as it is.
    /// </summary>
    private static async ValueTask<IBlockDevice> OpenNamedFormatAsync(IFormatDriver formatDriver, IBlockDevice file, OptionTree formatNode, OpenContext context, CancellationToken cancellationToken)
    {
        if (formatDriver.Name != "raw" && file.Length >= 6)
        {
            var magic = new byte[6];
            await file.ReadAsync(0, magic, cancellationToken).ConfigureAwait(false);
            if (Layers.Compressed.CompressedLayer.Detect(magic) is { } compression)
            {
                var layer = await Layers.Compressed.CompressedLayer.OpenAsync(file, compression, context, cancellationToken).ConfigureAwait(false);
                try
                {
                    return await formatDriver.OpenAsync(layer, formatNode, context, cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    await layer.DisposeAsync().ConfigureAwait(false);
                    throw;
                }
            }
        }

        return await formatDriver.OpenAsync(file, formatNode, context, cancellationToken).ConfigureAwait(false);
    }

    private static async ValueTask<byte[]> ReadHeadAsync(IBlockDevice file, CancellationToken cancellationToken)
    {
        var head = new byte[(int)Math.Min(file.Length, 64 * 1024)];
        if (head.Length > 0)
        {
            await file.ReadAsync(0, head, cancellationToken).ConfigureAwait(false);
        }

        return head;
    }

    /// <summary>Relative names inside an image (qcow2 backing files) resolve against the protocol node's url or filename.</summary>
    internal static OpenContext WithBase(OpenContext context, OptionTree protocolNode)
        => (protocolNode["url"] ?? protocolNode["filename"]) is { } location ? context with { BaseLocation = location, BaseProtocolNode = protocolNode.Clone() } : context;

    /// <summary>The scheme of a URL ("http"), or null for a local path (including Windows-style "C:").</summary>
    internal static string? SchemeOf(string filename)
    {
        int i = filename.IndexOf("://", StringComparison.Ordinal);
        if (i <= 1)
        {
            return null;
        }

        for (int j = 0; j < i; j++)
        {
            char c = filename[j];
            if (!(char.IsAsciiLetterOrDigit(c) || c is '+' or '-' or '.'))
            {
                return null;
            }
        }

        return filename[..i].ToLowerInvariant();
    }
}
