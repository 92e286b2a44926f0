using Microsoft.Extensions.Logging;

namespace UrlDisk.Opening;

/// <summary>What every driver needs to know while a graph is opened.</summary>
public sealed record OpenContext
{
    /// <summary>Open for writing (formats and the file source honour it; remote sources are always read-only).</summary>
    public bool Writable { get; init; }

    /// <summary>Where relative names (qcow2 backing files) are resolved from: a URL or a local path of the image that names them.</summary>
    internal string? BaseLocation { get; init; }

    /// <summary>
    /// The protocol node <see cref="BaseLocation"/> came from (its TLS, cookie and header options), so files that
    /// belong to the image (VMDK extents) open the way the image did.
    /// </summary>
    internal Specs.OptionTree? BaseProtocolNode { get; init; }

    /// <summary>How deep in a backing chain this open is; formats stop at <see cref="MaxChainDepth"/>.</summary>
    internal int Depth { get; init; }

    internal const int MaxChainDepth = 64;

    /// <summary>Locations already open in this chain, to detect loops.</summary>
    internal IReadOnlySet<string> Chain { get; init; } = new HashSet<string>();

    /// <summary>Write data read from the backing chain into the overlay.</summary>
    public bool CopyOnRead { get; init; }

    /// <summary>Where caches of sources without byte ranges live; null means a temp dir.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Boot profiles to record or prefetch (serve's --record-profile/--prefetch-profile, or a profile directory); null: none.</summary>
    internal Layers.Prefetch.BootProfileRequest? BootProfile { get; init; }

    /// <summary>Skip opening the backing chain (qemu-img's -U/--force-share style use in info).</summary>
    public bool NoBacking { get; init; }

    /// <summary>
    /// Where requests (method, URL without credentials, range, status), retries and their cause, redirects,
    /// fallbacks, validators and cache decisions are logged, at Debug and Information; null logs nothing.
    /// </summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>
    /// Makes the handler under every HTTP(S) source's <see cref="HttpClient"/> (a test server, a custom proxy or
    /// authentication handler). Null uses the built-in one; a handler given here takes over TLS (<c>sslverify</c>,
    /// <c>cafile</c>), proxy and connection limits, and must not follow redirects itself (UrlDisk resolves them, so
    /// credentials stay with their origin). Each source disposes the handler it was given.
    /// </summary>
    public Func<HttpMessageHandler>? HttpMessageHandlerFactory { get; init; }
}
