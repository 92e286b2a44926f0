using System.Net;
using System.Net.Sockets;
using UrlDisk.Layers;

namespace UrlDisk.Sources.Tftp;

/// <summary>
/// A file on a TFTP server as a <see cref="ISequentialSource"/>: TFTP has no byte ranges, so the whole file is read
/// from block 1 and <see cref="FillCache"/> gives random access. Opening starts the first transfer, which tells the
/// size (tsize) when the server offers it.
/// </summary>
internal sealed class TftpSource : ISequentialSource
{
    private readonly TftpSettings _settings;
    private readonly IPEndPoint _server;
    private TftpTransfer? _started;
    private bool _useOptions = true;

    private TftpSource(TftpSettings settings, IPEndPoint server)
    {
        _settings = settings;
        _server = server;
    }

    public string Protocol => "tftp";
    public string DisplayName => _settings.DisplayUrl;
    public long? Length { get; private set; }
    public string SizeName => "tsize";
    public IReadOnlyDictionary<string, object?> Details { get; private set; } = new Dictionary<string, object?>();

    public static async Task<TftpSource> OpenAsync(TftpSettings settings, CancellationToken cancellationToken)
    {
        IPAddress address;
        if (!IPAddress.TryParse(settings.Host.Trim('[', ']'), out address!))
        {
            IPAddress[] addresses;
            try
            {
                addresses = await Dns.GetHostAddressesAsync(settings.Host, cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                throw new SourceException($"{settings.DisplayUrl}: cannot resolve '{settings.Host}': {e.Message}", e);
            }

            address = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
                ?? throw new SourceException($"{settings.DisplayUrl}: '{settings.Host}' has no address");
        }

        var source = new TftpSource(settings, new IPEndPoint(address, settings.Port));
        var first = await source.StartAsync(cancellationToken).ConfigureAwait(false);
        source._started = first;
        source.Length = first.TransferSize;
        source.Details = new Dictionary<string, object?>
        {
            ["protocol"] = "tftp",
            ["url"] = settings.DisplayUrl,
            ["options"] = first.OptionsAccepted ? "negotiated (RFC 2347)" : "none (server ignored or refused them)",
            ["blksize"] = first.BlockSize,
            ["windowsize"] = first.WindowSize,
            ["tsize"] = first.TransferSize is { } n ? n : "not offered",
        };
        return source;
    }

    /// <summary>Sends the RRQ with options, or without them if the server refused them once.</summary>
    private async Task<TftpTransfer> StartAsync(CancellationToken cancellationToken)
    {
        if (_useOptions)
        {
            var t = await TftpTransfer.StartAsync(_settings, _server, withOptions: true, cancellationToken).ConfigureAwait(false);
            if (t is not null)
            {
                return t;
            }

            _useOptions = false;
        }

        return (await TftpTransfer.StartAsync(_settings, _server, withOptions: false, cancellationToken).ConfigureAwait(false))!;
    }

    public async Task CopyToAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken cancellationToken)
    {
        var transfer = Interlocked.Exchange(ref _started, null) ?? await StartAsync(cancellationToken).ConfigureAwait(false);
        using (transfer)
        {
            if (Length is { } known && transfer.TransferSize is { } now && now != known)
            {
                throw new RemoteFileChangedException($"{_settings.DisplayUrl}: the size changed from {known} to {now} bytes since it was opened");
            }

            await transfer.CopyToAsync(sink, cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync()
    {
        Interlocked.Exchange(ref _started, null)?.Dispose();
        return ValueTask.CompletedTask;
    }
}
