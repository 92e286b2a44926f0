using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// The backing image of an overlay, opened only when a read first needs it, so a fully allocated overlay
/// works without the backing server. Opened read-only, one level deeper, with loop detection.
/// </summary>
internal sealed class BackingFile : IAsyncDisposable
{
    private readonly string? _format;
    private readonly OpenContext _context;
    private readonly SemaphoreSlim _openLock = new(1, 1);
    private IBlockDevice? _device;

    public BackingFile(string name, string? format, OpenContext overlayContext, string driver = "qcow2")
    {
        Location = BackingName.Resolve(name, overlayContext.BaseLocation);
        _format = string.IsNullOrEmpty(format) ? null : format;
        var chain = new HashSet<string>(overlayContext.Chain);
        if (overlayContext.BaseLocation is { } self)
        {
            chain.Add(BackingName.ChainKey(self));
        }

        // A remote image must not make the reader open local files (its contents would leave the machine
        // through convert or serve).
        if (overlayContext.BaseLocation is { } overlay && !BackingName.IsLocal(overlay) && BackingName.IsLocal(Location))
        {
            throw new ImageFormatException($"{driver}: the remote image '{Redact.Spec(overlay)}' names a local backing file '{Redact.Spec(Location)}'; refused");
        }

        string key = BackingName.ChainKey(Location);
        if (chain.Contains(key))
        {
            throw new ImageFormatException($"{driver}: backing chain loop: '{Redact.Spec(Location)}' is already in the chain");
        }

        if (overlayContext.Depth + 1 > OpenContext.MaxChainDepth)
        {
            throw new ImageFormatException($"{driver}: backing chain is deeper than {OpenContext.MaxChainDepth} images");
        }

        _context = overlayContext with
        {
            Writable = false,
            CopyOnRead = false,
            Depth = overlayContext.Depth + 1,
            Chain = chain,
            BaseLocation = null,
        };
    }

    public string Location { get; }

    public async ValueTask<IBlockDevice?> GetAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _device) is { } d)
        {
            return d;
        }

        await _openLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_device is null)
            {
                var spec = SpecParser.ParseFilename(Location);
                Volatile.Write(ref _device, await ImageOpener.OpenAsync(spec, _format, _context, cancellationToken).ConfigureAwait(false));
            }

            return _device;
        }
        finally
        {
            _openLock.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_device is not null)
        {
            await _device.DisposeAsync().ConfigureAwait(false);
        }

        _openLock.Dispose();
    }
}
