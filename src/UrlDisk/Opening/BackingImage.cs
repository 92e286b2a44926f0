using UrlDisk.Specs;

namespace UrlDisk.Opening;

/// <summary>
/// The backing image of an overlay, opened by the opener only when a read first needs it, so a fully allocated
/// overlay works without the backing server. Made by <see cref="BackingChain.Resolve"/>, which checked the rules.
/// </summary>
internal sealed class BackingImage : IAsyncDisposable
{
    private readonly string? _format;
    private readonly OpenContext _context;
    private readonly SemaphoreSlim _openLock = new(1, 1);
    private IBlockDevice? _device;

    internal BackingImage(string location, string? format, OpenContext context)
    {
        Location = location;
        _format = format;
        _context = context;
    }

    /// <summary>The resolved name (a path, URL or json: spec) the backing image is opened from.</summary>
    public string Location { get; }

    /// <summary>The context the backing image opens with: read-only, one level deeper, its overlay in the chain.</summary>
    internal OpenContext Context => _context;

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
