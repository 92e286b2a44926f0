using UrlDisk.Diagnostics;
using UrlDisk.Layers;

namespace UrlDisk.Sources.Ftp;

/// <summary>
/// An FTP file on a server that cannot resume transfers (no REST STREAM) or tell sizes (no SIZE): one plain RETR
/// of the whole file, for <see cref="FillCache"/>. Uses the source's connection pool, so logins and TLS are shared.
/// </summary>
internal sealed class FtpSequentialSource(FtpSettings settings, FtpConnectionPool pool, long? length, IReadOnlyDictionary<string, object?> details)
    : ISequentialSource
{
    private readonly KeyValuePair<string, object?> _tag = new("protocol", settings.Scheme);

    public string Protocol => settings.Scheme;
    public string DisplayName => settings.DisplayUrl;
    public long? Length => length;
    public string SizeName => "SIZE";
    public IReadOnlyDictionary<string, object?> Details => details;

    public async Task CopyToAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken cancellationToken)
    {
        var conn = await pool.RentAsync(cancellationToken).ConfigureAwait(false);
        UrlDiskMetrics.Requests.Add(1, _tag);
        UrlDiskMetrics.InFlight.Add(1, _tag);
        try
        {
            await conn.RetrieveWholeAsync(async (chunk, ct) =>
            {
                UrlDiskMetrics.BytesFetched.Add(chunk.Length, _tag);
                await sink(chunk, ct).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            UrlDiskMetrics.InFlight.Add(-1, _tag);
            await pool.ReturnAsync(conn).ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => pool.DisposeAsync();
}
