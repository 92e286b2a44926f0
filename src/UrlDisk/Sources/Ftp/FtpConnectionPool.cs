using System.Collections.Concurrent;
using System.Net.Security;

namespace UrlDisk.Sources.Ftp;

/// <summary>
/// Up to <c>connections</c> logged-in control connections, each reused for request after request.
/// Every new connection checks that the file still has the size and modification time seen first.
/// </summary>
internal sealed class FtpConnectionPool : IAsyncDisposable
{
    private readonly FtpSettings _settings;
    private readonly SslClientAuthenticationOptions? _tlsOptions;
    private readonly SemaphoreSlim _slots;
    private readonly ConcurrentBag<FtpControlConnection> _idle = [];
    private long _size = -1;
    private DateTimeOffset? _modified;
    private bool _disposed;

    public FtpConnectionPool(FtpSettings settings, SslClientAuthenticationOptions? tlsOptions)
    {
        _settings = settings;
        _tlsOptions = tlsOptions;
        _slots = new SemaphoreSlim(settings.Connections, settings.Connections);
    }

    public async Task<FtpControlConnection> RentAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (_idle.TryTake(out var idle))
            {
                if (idle.IsUsable)
                {
                    return idle;
                }

                await idle.DisposeAsync().ConfigureAwait(false);
            }

            var conn = await FtpControlConnection.OpenAsync(_settings, _tlsOptions, cancellationToken).ConfigureAwait(false);
            try
            {
                CheckUnchanged(conn);
            }
            catch
            {
                await conn.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            return conn;
        }
        catch
        {
            _slots.Release();
            throw;
        }
    }

    /// <summary>Gives a connection back; a broken one is closed instead of kept.</summary>
    public async ValueTask ReturnAsync(FtpControlConnection conn)
    {
        if (conn.IsUsable && !_disposed)
        {
            _idle.Add(conn);
        }
        else
        {
            await conn.DisposeAsync().ConfigureAwait(false);
        }

        _slots.Release();
    }

    private void CheckUnchanged(FtpControlConnection conn)
    {
        lock (_idle)
        {
            if (_size < 0)
            {
                _size = conn.Size;
                _modified = conn.Modified;
                return;
            }

            if (conn.Size != _size)
            {
                throw new RemoteFileChangedException($"{_settings.DisplayUrl}: the file's size changed from {_size} to {conn.Size} bytes since it was opened");
            }

            if (conn.Modified != _modified)
            {
                throw new RemoteFileChangedException(
                    $"{_settings.DisplayUrl}: the file's modification time (MDTM) changed from {_modified:u} to {conn.Modified:u} since it was opened");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        while (_idle.TryTake(out var conn))
        {
            await conn.DisposeAsync().ConfigureAwait(false);
        }
    }
}
