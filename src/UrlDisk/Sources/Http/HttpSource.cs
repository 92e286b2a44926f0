using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Authentication;
using System.Text;
using UrlDisk.Diagnostics;
using UrlDisk.Specs;

namespace UrlDisk.Sources.Http;

/// <summary>
/// Random access to a file on an HTTP(S) server with range requests.
/// Redirects are resolved once; every response is checked against what was asked (status, Content-Range,
/// validators), so a reader never gets bytes it did not ask for or bytes of a replaced file.
/// Transient failures are retried with bounded exponential backoff, resuming where the body stopped.
/// </summary>
public sealed class HttpSource : BlockDevice
{
    private const int MaxRedirects = 10;
    private static readonly TimeSpan s_maxBackoff = TimeSpan.FromSeconds(5);

    private readonly HttpSourceOptions _options;
    private readonly HttpClient _client;
    private readonly CertificateErrorRecorder _certificateErrors;
    private readonly string _protocol;
    private readonly KeyValuePair<string, object?> _tag;
    private readonly Uri _originalUrl;
    private readonly AuthenticationHeaderValue? _authorization;
    private Uri _url;
    private int _reResolved;
    private long _length;
    private EntityTagHeaderValue? _etag;
    private DateTimeOffset? _lastModified;
    private Version _httpVersion = HttpVersion.Version11;
    private bool _ranges = true;
    private BlockDeviceInfo _info = null!;

    private HttpSource(string protocol, HttpSourceOptions options)
    {
        _protocol = protocol;
        _options = options;
        _originalUrl = options.Url;
        _url = options.Url;
        _certificateErrors = new CertificateErrorRecorder();
        _client = HttpClientFactory.Create(options, _certificateErrors);
        _tag = new("protocol", protocol);
        if (options.Username is not null)
        {
            _authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{options.Username}:{options.Password}")));
        }
    }

    public override long Length => _length;

    public override BlockDeviceInfo Info => _info;

    /// <summary>The URL every range request goes to, after redirects.</summary>
    public Uri FinalUrl => _url;

    /// <summary>False when the server cannot send byte ranges: only <see cref="CopyWholeAsync"/> works then.</summary>
    public bool SupportsRanges => _ranges;

    /// <summary>The size, or null when a server without ranges did not tell it.</summary>
    public long? KnownLength => _length >= 0 ? _length : null;

    /// <summary>Probes the server (size, ranges, validators) and returns a source ready for range reads.</summary>
    public static async ValueTask<HttpSource> OpenAsync(string protocol, HttpSourceOptions options, CancellationToken cancellationToken)
    {
        var source = new HttpSource(protocol, options);
        try
        {
            await source.ProbeAsync(cancellationToken).ConfigureAwait(false);
            return source;
        }
        catch
        {
            source._client.Dispose();
            throw;
        }
    }

    private string Display(Uri url) => Redact.Url(url.ToString());

    private async Task ProbeAsync(CancellationToken ct)
    {
        int attempt = 0;
        while (true)
        {
            try
            {
                await ProbeOnceAsync(ct).ConfigureAwait(false);
                break;
            }
            catch (SourceException e) when (e.IsTransient && attempt < _options.Retries)
            {
                attempt++;
                UrlDiskMetrics.Retries.Add(1, _tag);
                await Task.Delay(Backoff(attempt), ct).ConfigureAwait(false);
            }
        }

        var details = new Dictionary<string, object?>
        {
            ["protocol"] = _protocol,
            ["url"] = Display(_originalUrl),
            ["final-url"] = Display(_url),
            ["ranges"] = _ranges,
            ["http-version"] = _httpVersion.ToString(),
            ["etag"] = _etag?.ToString(),
            ["last-modified"] = _lastModified?.ToString("R", CultureInfo.InvariantCulture),
            ["readahead"] = _options.Readahead,
            ["connections"] = _options.Connections,
            ["sslverify"] = _protocol == "https" ? _options.SslVerify : null,
        };
        foreach (var k in details.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList())
        {
            details.Remove(k);
        }

        _info = new BlockDeviceInfo
        {
            Driver = _protocol,
            DisplayName = Display(_originalUrl),
            PreferredBlockSize = 64 * 1024,
            Details = details,
        };
    }

    private async Task ProbeOnceAsync(CancellationToken ct)
    {
        _url = _originalUrl;
        _ranges = true;
        bool useGet = _options.ForceRange;
        for (int redirects = 0; ;)
        {
            using var request = NewRequest(useGet ? HttpMethod.Get : HttpMethod.Head, _url);
            if (useGet)
            {
                request.Headers.Range = new RangeHeaderValue(0, 0);
            }

            using var response = await SendAsync(request, ct).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status is >= 300 and < 400 && response.Headers.Location is { } location)
            {
                if (++redirects > MaxRedirects)
                {
                    throw new SourceException($"{_protocol}: more than {MaxRedirects} redirects from '{Display(_originalUrl)}'");
                }

                _url = new Uri(_url, location);
                if (_url.Scheme is not ("http" or "https"))
                {
                    throw new SourceException($"{_protocol}: redirect to unsupported URL '{Display(_url)}'");
                }

                UrlDiskMetrics.Redirects.Add(1, _tag);
                continue;
            }

            // Some servers (S3 presigned URLs among them) refuse HEAD: ask for the first byte instead.
            if (!useGet && status is 403 or 405 or 501)
            {
                useGet = true;
                continue;
            }

            ThrowIfError(response, "opening");
            _httpVersion = response.Version;
            CaptureValidators(response);
            if (status == 206)
            {
                if (response.Content.Headers.ContentRange is not { HasLength: true } cr || !cr.HasRange || cr.From != 0)
                {
                    throw new SourceException($"{_protocol}: server answered 206 to 'Range: bytes=0-0' without a usable Content-Range for '{Display(_url)}'");
                }

                _length = cr.Length!.Value;
                return;
            }

            long? length = response.Content.Headers.ContentLength;
            if (useGet)
            {
                // A 200 for a ranged GET: the server ignores ranges; the file can only be read whole.
                _ranges = false;
                _length = length ?? -1;
                return;
            }

            if (length is null)
            {
                // No size from HEAD (chunked servers): a ranged GET tells the size, or shows there are no ranges.
                useGet = true;
                continue;
            }

            _length = length.Value;
            bool ranges = response.Headers.AcceptRanges.Any(r => string.Equals(r, "bytes", StringComparison.OrdinalIgnoreCase));
            if (!ranges && _length > 0)
            {
                // Many servers do ranges without saying so; one ranged GET tells.
                useGet = true;
                continue;
            }

            return;
        }
    }

    private SourceException NoRanges(long length) =>
        new($"{_protocol}: server does not support byte ranges for '{Display(_url)}' ({length} bytes); random access needs 'Accept-Ranges: bytes'");

    private void CaptureValidators(HttpResponseMessage response)
    {
        var etag = response.Headers.ETag;
        _etag = etag is { IsWeak: false } ? etag : null;
        _lastModified = response.Content.Headers.LastModified;
    }

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int attempt = 0;
        int done = 0;
        bool reResolvedHere = false;
        while (true)
        {
            try
            {
                done += await FetchAsync(offset + done, buffer[done..], cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is PartialFetchException || e is SourceException { IsTransient: true })
            {
                var error = e as SourceException;
                if (e is PartialFetchException p)
                {
                    done += p.BytesDone;
                    error = p.Error;
                }

                if (attempt >= _options.Retries)
                {
                    throw attempt == 0 ? error! : new SourceException($"{error!.Message} (gave up after {attempt} retries)", error);
                }

                attempt++;
                UrlDiskMetrics.Retries.Add(1, _tag);
                await Task.Delay(Backoff(attempt), cancellationToken).ConfigureAwait(false);
            }
            catch (SourceException e) when (!e.IsTransient && e is not RemoteFileChangedException && !reResolvedHere && _url != _originalUrl
                && Interlocked.CompareExchange(ref _reResolved, 1, 0) == 0)
            {
                // A redirect target that starts failing (an expired signed URL) is resolved again, once.
                reResolvedHere = true;
                await ReResolveAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task ReResolveAsync(CancellationToken ct)
    {
        long length = _length;
        var etag = _etag;
        var lastModified = _lastModified;
        await ProbeOnceAsync(ct).ConfigureAwait(false);
        if (_length != length || (etag is not null && !Equals(etag, _etag)) || (lastModified is not null && _lastModified != lastModified))
        {
            throw new RemoteFileChangedException($"{_protocol}: the file at '{Display(_originalUrl)}' changed on the server (after resolving its redirect again); reopen it");
        }
    }

    private static TimeSpan Backoff(int attempt)
    {
        double ms = Math.Min(s_maxBackoff.TotalMilliseconds, 100 * Math.Pow(2, attempt - 1));
        return TimeSpan.FromMilliseconds(ms * (0.75 + (Random.Shared.NextDouble() * 0.5)));
    }

    /// <summary>One range GET. Returns the bytes filled; a failure after some bytes throws <see cref="PartialFetchException"/> so a retry resumes.</summary>
    private async Task<int> FetchAsync(long offset, Memory<byte> buffer, CancellationToken ct)
    {
        long last = offset + buffer.Length - 1;
        using var request = NewRequest(HttpMethod.Get, _url);
        request.Headers.Range = new RangeHeaderValue(offset, last);
        if (_etag is not null)
        {
            request.Headers.IfRange = new RangeConditionHeaderValue(_etag);
        }
        else if (_lastModified is { } lm)
        {
            request.Headers.IfRange = new RangeConditionHeaderValue(lm);
        }

        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stall.CancelAfter(_options.Timeout);
        UrlDiskMetrics.InFlight.Add(1, _tag);
        int done = 0;
        try
        {
            using var response = await SendAsync(request, stall.Token, ct).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (status == 200)
            {
                // A 200 to an If-Range request means "changed" only when the validators say so; with the same
                // validators the server simply ignores ranges.
                ThrowIfChanged(response, response.Content.Headers.ContentLength);
                if (_etag is null && _lastModified is { } opened && response.Content.Headers.LastModified is { } now && now != opened)
                {
                    throw Changed($"it was modified at {now:R}, after it was opened");
                }

                throw new SourceException($"{_protocol}: server answered 200 (the whole file) to a range request for '{Display(_url)}': it ignores byte ranges; refusing bytes that were not asked for");
            }

            ThrowIfError(response, $"reading {buffer.Length} bytes at offset {offset}");
            if (status != 206)
            {
                throw new SourceException($"{_protocol}: server answered {status} {response.ReasonPhrase} to a range request for '{Display(_url)}'");
            }

            CheckResponse(response, offset, last);
            var stream = await response.Content.ReadAsStreamAsync(stall.Token).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                while (done < buffer.Length)
                {
                    int n = await stream.ReadAsync(buffer[done..], stall.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        throw new SourceException($"{_protocol}: transfer closed with {buffer.Length - done} bytes remaining to read at offset {offset + done} of '{Display(_url)}'") { IsTransient = true };
                    }

                    done += n;
                    UrlDiskMetrics.BytesFetched.Add(n, _tag);
                    stall.CancelAfter(_options.Timeout);
                }
            }

            return done;
        }
        catch (Exception e) when (done > 0 && IsTransient(e, ct))
        {
            throw new PartialFetchException(done, Transient(e, ct, stall));
        }
        catch (Exception e) when (e is not SourceException && IsTransient(e, ct))
        {
            throw Transient(e, ct, stall);
        }
        finally
        {
            UrlDiskMetrics.InFlight.Add(-1, _tag);
        }
    }

    private static bool IsTransient(Exception e, CancellationToken ct) => e switch
    {
        SourceException s => s.IsTransient,
        OperationCanceledException => !ct.IsCancellationRequested,
        HttpRequestException h => h.InnerException is not AuthenticationException,
        IOException => true,
        _ => false,
    };

    private SourceException Transient(Exception e, CancellationToken ct, CancellationTokenSource stall) => e switch
    {
        SourceException s => s,
        OperationCanceledException when !ct.IsCancellationRequested && stall.IsCancellationRequested =>
            new SourceException($"{_protocol}: no data from '{Display(_url)}' for {_options.Timeout.TotalSeconds:0.###} s (timeout)", e) { IsTransient = true },
        _ => new SourceException($"{_protocol}: {Redact.Spec(e.Message)} ({Display(_url)})", e) { IsTransient = true },
    };

    /// <summary>
    /// One plain GET of the whole file, chunk after chunk, for servers without byte ranges (the fill cache calls it).
    /// The validators and size seen at open are checked, so a replaced file is an error here too.
    /// </summary>
    internal async Task CopyWholeAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken ct)
    {
        using var request = NewRequest(HttpMethod.Get, _url);
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stall.CancelAfter(_options.Timeout);
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(256 * 1024);
        UrlDiskMetrics.InFlight.Add(1, _tag);
        try
        {
            using var response = await SendAsync(request, stall.Token, ct).ConfigureAwait(false);
            ThrowIfError(response, "reading the whole file");
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new SourceException($"{_protocol}: server answered {(int)response.StatusCode} {response.ReasonPhrase} to a plain GET of '{Display(_url)}'");
            }

            ThrowIfChanged(response, _length >= 0 ? response.Content.Headers.ContentLength : null);

            var stream = await response.Content.ReadAsStreamAsync(stall.Token).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                long total = 0;
                int n;
                while ((n = await stream.ReadAsync(buffer, stall.Token).ConfigureAwait(false)) > 0)
                {
                    total += n;
                    UrlDiskMetrics.BytesFetched.Add(n, _tag);
                    await sink(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    stall.CancelAfter(_options.Timeout);
                }

                if (_length >= 0 && total != _length)
                {
                    throw new SourceException($"{_protocol}: transfer closed after {total} of {_length} bytes of '{Display(_url)}'") { IsTransient = true };
                }
            }
        }
        catch (Exception e) when (e is not SourceException && IsTransient(e, ct))
        {
            throw Transient(e, ct, stall);
        }
        finally
        {
            UrlDiskMetrics.InFlight.Add(-1, _tag);
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void CheckResponse(HttpResponseMessage response, long first, long last)
    {
        if (response.Content.Headers.ContentRange is not { HasRange: true } cr)
        {
            throw new SourceException($"{_protocol}: 206 without Content-Range from '{Display(_url)}'");
        }

        if (cr.From != first || cr.To != last)
        {
            throw new SourceException($"{_protocol}: asked for bytes {first}-{last} but the server sent {cr.From}-{cr.To} ('{Display(_url)}'); refusing bytes that were not asked for");
        }

        ThrowIfChanged(response, cr.Length);

        if (response.Content.Headers.ContentLength is { } len && len != last - first + 1)
        {
            throw new SourceException($"{_protocol}: Content-Length {len} does not match the range {first}-{last} from '{Display(_url)}'");
        }
    }

    /// <summary>The strong ETag and the whole file's size (<paramref name="total"/>, when the answer tells it) must be those seen at open.</summary>
    private void ThrowIfChanged(HttpResponseMessage response, long? total)
    {
        if (_etag is not null && response.Headers.ETag is { IsWeak: false } etag && !Equals(etag, _etag))
        {
            throw Changed($"its ETag is now {etag}, not {_etag}");
        }

        if (total is { } size && size != _length)
        {
            throw Changed($"its size is now {size} bytes, not {_length}");
        }
    }

    private RemoteFileChangedException Changed(string how) =>
        new($"{_protocol}: the file at '{Display(_originalUrl)}' changed on the server since it was opened ({how}); reopen it to read the new version");

    private void ThrowIfError(HttpResponseMessage response, string doing)
    {
        int status = (int)response.StatusCode;
        if (status < 400)
        {
            return;
        }

        string hint = status switch
        {
            401 => _options.Username is null ? ": credentials are needed (user:password@ in the URL, or username and password-file)" : ": the username or password was not accepted",
            403 => ": access denied",
            404 => ": no such file",
            407 => ": the proxy needs credentials (proxy-username, proxy-password-file)",
            _ => "",
        };
        bool transient = status is 408 or 429 or >= 500;
        throw new SourceException($"{_protocol}: server answered {status} {response.ReasonPhrase} {doing} '{Display(_url)}'{hint}") { IsTransient = transient };
    }

    private HttpRequestMessage NewRequest(HttpMethod method, Uri url)
    {
        var request = new HttpRequestMessage(method, url);
        if (url.Scheme == "https")
        {
            request.Version = HttpVersion.Version20;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
        }

        request.Headers.UserAgent.Add(new ProductInfoHeaderValue("UrlDisk", "0.1"));

        // Credentials go only to the host they were given for, not to a redirect target elsewhere.
        if (_authorization is not null && SameOrigin(url, _originalUrl))
        {
            request.Headers.Authorization = _authorization;
        }

        if (_options.Cookie is not null)
        {
            request.Headers.TryAddWithoutValidation("Cookie", _options.Cookie);
        }

        return request;
    }

    private static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    private Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct) => SendAsync(request, ct, ct);

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken token, CancellationToken userToken)
    {
        UrlDiskMetrics.Requests.Add(1, _tag);
        try
        {
            return await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (e.InnerException is AuthenticationException || _certificateErrors.Last is not null)
        {
            string why = _certificateErrors.Last ?? e.InnerException?.Message ?? e.Message;
            throw new SourceException($"{_protocol}: TLS connection to {request.RequestUri!.Host} failed: {why}; use cafile=<PEM file> to trust its certificate, or sslverify=off", e);
        }
        catch (HttpRequestException e) when (!userToken.IsCancellationRequested)
        {
            string msg = e.InnerException is { } inner ? $"{e.Message} ({inner.Message})" : e.Message;
            throw new SourceException($"{_protocol}: {msg} ({Display(request.RequestUri!)})", e) { IsTransient = e.HttpRequestError is not HttpRequestError.NameResolutionError };
        }
        catch (OperationCanceledException e) when (!userToken.IsCancellationRequested)
        {
            throw new SourceException($"{_protocol}: no answer from '{Display(request.RequestUri!)}' within {_options.Timeout.TotalSeconds:0.###} s (timeout)", e) { IsTransient = true };
        }
    }

    protected override ValueTask DisposeCoreAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class PartialFetchException(int bytesDone, SourceException error) : Exception(error.Message, error)
    {
        public int BytesDone { get; } = bytesDone;
        public SourceException Error { get; } = error;
    }
}
