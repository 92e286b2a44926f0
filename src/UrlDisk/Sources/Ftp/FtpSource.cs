using UrlDisk.Diagnostics;
using UrlDisk.Layers;
using UrlDisk.Opening;

namespace UrlDisk.Sources.Ftp;

/// <summary>
/// A file on an FTP or FTPS server as a read-only block device. Each read is a REST + RETR on a pooled control
/// connection, stopped as soon as the range has arrived; the opener stacks the readahead cache over it.
/// </summary>
internal sealed class FtpSource : BlockDevice, IHasContentIdentity, IRemoteRangeSource
{
    private readonly FtpSettings _settings;
    private readonly FtpConnectionPool _pool;
    private readonly RetryPolicy _retry;
    private readonly KeyValuePair<string, object?> _tag;
    private readonly long _length;

    private FtpSource(FtpSettings settings, FtpConnectionPool pool, RetryPolicy retry, FtpControlConnection first)
    {
        _settings = settings;
        _pool = pool;
        _retry = retry;
        _length = first.Size;
        // MDTM is the only validator FTP has; without it the file cannot be told from a changed one. The user is part
        // of the location: a relative path names a file under that user's login directory.
        ContentIdentity = first.Size < 0 ? null : new($"{settings.Scheme}://{Uri.EscapeDataString(settings.User)}@{settings.Host}:{settings.Port}/{settings.Path}", first.Size,
            first.Modified is { } modified ? "mdtm=" + modified.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture) : null);
        _tag = new("protocol", settings.Scheme);
        var details = new Dictionary<string, object?>
        {
            ["protocol"] = settings.Scheme,
            ["url"] = settings.DisplayUrl,
            ["server"] = first.Greeting,
            ["size"] = first.Size,
            ["connections"] = settings.Connections,
        };
        if (first.Modified is { } m)
        {
            details["last-modified"] = m.ToString("yyyy-MM-dd HH:mm:ss.fff 'UTC'", System.Globalization.CultureInfo.InvariantCulture);
        }

        if (settings.Tls != FtpTlsMode.None)
        {
            details["tls"] = $"{settings.Tls.ToString().ToLowerInvariant()} ({first.TlsProtocol})";
        }

        Info = new BlockDeviceInfo
        {
            Driver = settings.Scheme,
            DisplayName = settings.DisplayUrl,
            PreferredBlockSize = 64 * 1024,
            Details = details,
        };
    }

    public override long Length => _length;

    /// <summary>The URL without credentials, the size and the MDTM time seen at login.</summary>
    public ContentIdentity? ContentIdentity { get; }

    public override BlockDeviceInfo Info { get; }

    /// <summary>
    /// Logs in once to learn the file, then gives random access: REST + RETR ranges when the server can resume and
    /// tells the size; otherwise one whole-file RETR as a <see cref="SequentialSourceDevice"/>, for the fill cache.
    /// </summary>
    internal static async Task<IBlockDevice> OpenAsync(FtpSettings settings, OpenContext context, CancellationToken cancellationToken)
    {
        var pool = new FtpConnectionPool(settings, settings.Tls == FtpTlsMode.None ? null : FtpTlsOptions.Create(settings));
        try
        {
            var logger = UrlDiskLogging.Create(context, "UrlDisk.Ftp");
            var retry = new RetryPolicy(settings.Retries, settings.Scheme, logger: logger);
            var first = await retry.RunAsync(pool.RentAsync, null, cancellationToken).ConfigureAwait(false);
            var source = new FtpSource(settings, pool, retry, first);
            bool ranges = first.CanResume && first.Size >= 0;
            await pool.ReturnAsync(first).ConfigureAwait(false);
            if (ranges)
            {
                return source;
            }

            var details = new Dictionary<string, object?>(source.Info.Details)
            {
                ["ranges"] = first.CanResume ? "no (the server does not implement SIZE)" : "no (FEAT lacks REST STREAM)",
            };
            if (first.Size < 0)
            {
                details.Remove("size");
            }

            return new SequentialSourceDevice(new FtpSequentialSource(settings, pool, first.Size >= 0 ? first.Size : null, details), settings.Retries, "UrlDisk.Ftp");
        }
        catch
        {
            await pool.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        => new(FetchAsync(offset, buffer, cancellationToken));

    /// <summary>
    /// REST + RETR of the range. A retry resumes after the bytes already received, and attempts that receive some do
    /// not use up the retries (<see cref="RetryPolicy"/>).
    /// </summary>
    private async Task FetchAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken)
    {
        int done = 0;
        await _retry.RunAsync(async ct =>
        {
            var conn = await _pool.RentAsync(ct).ConfigureAwait(false);
            UrlDiskMetrics.Requests.Add(1, _tag);
            UrlDiskMetrics.InFlight.Add(1, _tag);
            try
            {
                await conn.RetrieveAsync(offset + done, destination[done..], n =>
                {
                    done += n;
                    UrlDiskMetrics.BytesFetched.Add(n, _tag);
                }, ct).ConfigureAwait(false);
            }
            finally
            {
                UrlDiskMetrics.InFlight.Add(-1, _tag);
                await _pool.ReturnAsync(conn).ConfigureAwait(false);
            }
        }, () => done, cancellationToken).ConfigureAwait(false);
    }

    protected override ValueTask DisposeCoreAsync() => _pool.DisposeAsync();
}
