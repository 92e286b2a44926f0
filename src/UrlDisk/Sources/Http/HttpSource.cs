using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Authentication;
using System.Text;
using Microsoft.Extensions.Logging;
using UrlDisk.Diagnostics;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Sources.Http;

/// <summary>
/// Random access to a file on an HTTP(S) server with range requests.
/// Redirects are resolved once; every response is checked against what was asked (status, Content-Range,
/// identity encoding, validators), so a reader never gets bytes it did not ask for or bytes of a replaced file.
/// Every request has the <c>timeout</c>; transient failures are retried under the <see cref="RetryPolicy"/>,
/// resuming where the body stopped.
/// </summary>
internal sealed class HttpSource : BlockDevice, IHasContentIdentity, IRemoteRangeSource
{
    private const int MaxRedirects = 10;

    /// <summary>Which header-script output a request was built with, so concurrent 401s run the script once.</summary>
    private static readonly HttpRequestOptionsKey<int> ScriptGenerationKey = new("urldisk.header-script-generation");

    private static readonly string ProductVersion = typeof(HttpSource).Assembly.GetName().Version?.ToString(3) ?? "0";

    private readonly HttpSourceOptions _options;
    private readonly RetryPolicy _retry;
    private readonly HttpClient _client;
    private readonly CertificateErrorRecorder _certificateErrors;
    private readonly string _protocol;
    private readonly KeyValuePair<string, object?> _tag;
    private readonly Uri _originalUrl;
    private readonly AuthenticationHeaderValue? _authorization;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _scriptLock = new(1, 1);
    private volatile IReadOnlyList<string> _scriptHeaders = [];
    private int _scriptGeneration;
    private Uri _url;
    private int _reResolved;
    private long _length;
    private HttpValidators _validators;
    private Version _httpVersion = HttpVersion.Version11;
    private bool _ranges = true;
    private BlockDeviceInfo _info = null!;

    private HttpSource(string protocol, HttpSourceOptions options, OpenContext? context)
    {
        _logger = UrlDiskLogging.Create(context, "UrlDisk.Http");
        _protocol = protocol;
        _options = options;
        _originalUrl = options.Url;
        _url = options.Url;
        _certificateErrors = new CertificateErrorRecorder();
        _client = HttpClientFactory.Create(options, _certificateErrors, context?.HttpMessageHandlerFactory);
        _tag = new("protocol", protocol);
        _retry = new RetryPolicy(options.Retries, protocol, logger: _logger);
        if (options.BearerToken is not null)
        {
            _authorization = new AuthenticationHeaderValue("Bearer", options.BearerToken);
        }
        else if (options.Username is not null)
        {
            _authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{options.Username}:{options.Password}")));
        }
    }

    public override long Length => _length;

    public override BlockDeviceInfo Info => _info;

    /// <summary>The final URL (without user info), size and validators seen at open; null without a known size.</summary>
    public ContentIdentity? ContentIdentity => _length < 0 ? null : new(
        new UriBuilder(_url) { UserName = "", Password = "" }.Uri.ToString(),
        _length,
        _validators.ETag is null && _validators.LastModified is null
            ? null
            : $"etag={_validators.ETag?.ToString() ?? "-"};last-modified={_validators.LastModified?.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture) ?? "-"}");

    /// <summary>False when the server cannot send byte ranges: only <see cref="CopyWholeAsync"/> works then.</summary>
    public bool SupportsRanges => _ranges;

    /// <summary>The size, or null when a server without ranges did not tell it.</summary>
    public long? KnownLength => _length >= 0 ? _length : null;

    /// <summary>Probes the server (size, ranges, validators) and returns a source ready for range reads.</summary>
    public static async ValueTask<HttpSource> OpenAsync(string protocol, HttpSourceOptions options, OpenContext? context, CancellationToken cancellationToken)
    {
        var source = new HttpSource(protocol, options, context);
        try
        {
            if (options.HeaderScript is not null)
            {
                await source.RefreshScriptHeadersAsync(0, cancellationToken).ConfigureAwait(false);
            }

            await source.ProbeAsync(cancellationToken).ConfigureAwait(false);
            return source;
        }
        catch
        {
            source._client.Dispose();
            source._scriptLock.Dispose();
            throw;
        }
    }

    private string Display(Uri url) => Redact.Url(url.ToString());

    private async Task ProbeAsync(CancellationToken ct)
    {
        var probe = await _retry.RunAsync(ProbeOnceAsync, null, ct).ConfigureAwait(false);
        _url = probe.Url;
        _ranges = probe.Ranges;
        _length = probe.Length;
        _httpVersion = probe.HttpVersion;
        _validators = probe.Validators;
        _logger.LogInformation("{Protocol}: opened {Url} ({Final}): {Length} bytes, ranges {Ranges}, HTTP/{Version}, ETag {ETag}, Last-Modified {LastModified}",
            _protocol, Display(_originalUrl), _url == _originalUrl ? "no redirect" : "redirected to " + Display(_url), _length, _ranges ? "yes" : "no",
            _httpVersion, _validators.ETag?.ToString() ?? "none", _validators.LastModified?.ToString("R", CultureInfo.InvariantCulture) ?? "none");

        var details = new Dictionary<string, object?>
        {
            ["protocol"] = _protocol,
            ["url"] = Display(_originalUrl),
            ["final-url"] = Display(_url),
            ["ranges"] = _ranges,
            ["http-version"] = _httpVersion.ToString(),
            ["etag"] = _validators.ETag?.ToString(),
            ["last-modified"] = _validators.LastModified?.ToString("R", CultureInfo.InvariantCulture),
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

    /// <summary>What one probe of the original URL found: where the file is now, its size and validators.</summary>
    private sealed record Probe(Uri Url, long Length, bool Ranges, Version HttpVersion, HttpValidators Validators);

    /// <summary>Follows the redirects from the original URL and learns the size (HEAD, or a ranged GET); each request has the timeout.</summary>
    private async Task<Probe> ProbeOnceAsync(CancellationToken ct)
    {
        var url = _originalUrl;
        bool useGet = _options.ForceRange;
        for (int redirects = 0; ;)
        {
            using var request = NewRequest(useGet ? HttpMethod.Get : HttpMethod.Head, url);
            if (useGet)
            {
                request.Headers.Range = new RangeHeaderValue(0, 0);
            }

            using var stall = NewStall(ct);
            using var response = await SendAsync(request, stall.Token, ct).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status is >= 300 and < 400 && response.Headers.Location is { } location)
            {
                if (++redirects > MaxRedirects)
                {
                    throw new SourceException($"{_protocol}: more than {MaxRedirects} redirects from '{Display(_originalUrl)}'");
                }

                url = new Uri(url, location);
                if (url.Scheme is not ("http" or "https"))
                {
                    throw new SourceException($"{_protocol}: redirect to unsupported URL '{Display(url)}'");
                }

                UrlDiskMetrics.Redirects.Add(1, _tag);
                _logger.LogInformation("{Protocol}: {Status} redirect to {Url}", _protocol, status, Display(url));
                continue;
            }

            // Some servers (S3 presigned URLs among them) refuse HEAD: ask for the first byte instead.
            if (!useGet && status is 403 or 405 or 501)
            {
                _logger.LogInformation("{Protocol}: HEAD answered {Status}; asking for the first byte with a ranged GET instead", _protocol, status);
                useGet = true;
                continue;
            }

            ThrowIfError(response, "opening", url);
            ThrowIfEncoded(response, url);
            var validators = HttpValidators.Of(response);
            if (status == 206)
            {
                if (response.Content.Headers.ContentRange is not { HasLength: true } cr || !cr.HasRange || cr.From != 0)
                {
                    throw new SourceException($"{_protocol}: server answered 206 to 'Range: bytes=0-0' without a usable Content-Range for '{Display(url)}'");
                }

                return new Probe(url, cr.Length!.Value, true, response.Version, validators);
            }

            long? length = response.Content.Headers.ContentLength;
            if (useGet)
            {
                // A 200 for a ranged GET: the server ignores ranges; the file can only be read whole.
                _logger.LogInformation("{Protocol}: the server ignores byte ranges (200 to a ranged GET); the file will be read whole", _protocol);
                return new Probe(url, length ?? -1, false, response.Version, validators);
            }

            if (length is null)
            {
                // No size from HEAD (chunked servers): a ranged GET tells the size, or shows there are no ranges.
                _logger.LogDebug("{Protocol}: HEAD told no size; trying a ranged GET", _protocol);
                useGet = true;
                continue;
            }

            bool ranges = response.Headers.AcceptRanges.Any(r => string.Equals(r, "bytes", StringComparison.OrdinalIgnoreCase));
            if (!ranges && length > 0)
            {
                // Many servers do ranges without saying so; one ranged GET tells.
                _logger.LogDebug("{Protocol}: HEAD did not announce byte ranges; trying a ranged GET", _protocol);
                useGet = true;
                continue;
            }

            return new Probe(url, length.Value, true, response.Version, validators);
        }
    }

    protected override async ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        // A retry resumes after the bytes already received; attempts that receive some do not use up the retries.
        int done = 0;
        bool reResolvedHere = false;
        while (true)
        {
            try
            {
                await _retry.RunAsync(ct => FetchAsync(offset + done, buffer[done..], n => done += n, ct), () => done, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (SourceException e) when (!e.IsTransient && e is not RemoteFileChangedException && !reResolvedHere && _url != _originalUrl
                && Interlocked.CompareExchange(ref _reResolved, 1, 0) == 0)
            {
                // A redirect target that starts failing (an expired signed URL) is resolved again, once.
                reResolvedHere = true;
                _logger.LogInformation("{Protocol}: {Url} fails ({Cause}); resolving the redirect from the original URL again", _protocol, Display(_url), e.Message);
                await ReResolveAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task ReResolveAsync(CancellationToken ct)
    {
        var probe = await _retry.RunAsync(ProbeOnceAsync, null, ct).ConfigureAwait(false);
        string? how = probe.Length != _length ? $"its size is now {probe.Length} bytes, not {_length}" : _validators.DifferenceTo(probe.Validators);
        if (how is not null)
        {
            throw new RemoteFileChangedException($"{_protocol}: the file at '{Display(_originalUrl)}' changed on the server (after resolving its redirect again: {how}); reopen it");
        }

        _url = probe.Url;
    }

    /// <summary>A token that fires after <c>timeout</c> without progress; <see cref="CancellationTokenSource.CancelAfter(TimeSpan)"/> again on each progress.</summary>
    private CancellationTokenSource NewStall(CancellationToken ct)
    {
        var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stall.CancelAfter(_options.Timeout);
        return stall;
    }

    /// <summary>One range GET into <paramref name="buffer"/>; <paramref name="advanced"/> is told each piece received, so a retry can resume.</summary>
    private async Task FetchAsync(long offset, Memory<byte> buffer, Action<int> advanced, CancellationToken ct)
    {
        long last = offset + buffer.Length - 1;
        using var request = NewRequest(HttpMethod.Get, _url);
        request.Headers.Range = new RangeHeaderValue(offset, last);
        request.Headers.IfRange = _validators.IfRange;

        using var stall = NewStall(ct);
        UrlDiskMetrics.InFlight.Add(1, _tag);
        try
        {
            using var response = await SendAsync(request, stall.Token, ct).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (status == 200)
            {
                // A 200 to an If-Range request means "changed" only when the validators say so; with the same
                // validators the server simply ignores ranges.
                ThrowIfChanged(response, response.Content.Headers.ContentLength);
                throw new SourceException($"{_protocol}: server answered 200 (the whole file) to a range request for '{Display(_url)}': it ignores byte ranges; refusing bytes that were not asked for");
            }

            if (status == 416 && response.Content.Headers.ContentRange is { HasLength: true, Length: { } size } && size != _length)
            {
                // "bytes */size": a range inside the file opened is outside this one.
                throw Changed($"its size is now {size} bytes, not {_length}");
            }

            ThrowIfError(response, $"reading {buffer.Length} bytes at offset {offset}", _url);
            if (status != 206)
            {
                throw new SourceException($"{_protocol}: server answered {status} {response.ReasonPhrase} to a range request for '{Display(_url)}'");
            }

            CheckResponse(response, offset, last);
            var stream = await response.Content.ReadAsStreamAsync(stall.Token).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                int done = 0;
                while (done < buffer.Length)
                {
                    int n = await stream.ReadAsync(buffer[done..], stall.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        throw new SourceException($"{_protocol}: transfer closed with {buffer.Length - done} bytes remaining to read at offset {offset + done} of '{Display(_url)}'") { IsTransient = true };
                    }

                    done += n;
                    advanced(n);
                    UrlDiskMetrics.BytesFetched.Add(n, _tag);
                    stall.CancelAfter(_options.Timeout);
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
        using var stall = NewStall(ct);
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(256 * 1024);
        UrlDiskMetrics.InFlight.Add(1, _tag);
        try
        {
            using var response = await SendAsync(request, stall.Token, ct).ConfigureAwait(false);
            ThrowIfError(response, "reading the whole file", _url);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new SourceException($"{_protocol}: server answered {(int)response.StatusCode} {response.ReasonPhrase} to a plain GET of '{Display(_url)}'");
            }

            ThrowIfEncoded(response, _url);
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

        ThrowIfEncoded(response, _url);
        ThrowIfChanged(response, cr.Length);

        if (response.Content.Headers.ContentLength is { } len && len != last - first + 1)
        {
            throw new SourceException($"{_protocol}: Content-Length {len} does not match the range {first}-{last} from '{Display(_url)}'");
        }
    }

    /// <summary>
    /// The validators seen at open (<see cref="HttpValidators.DifferenceTo"/>) and the whole file's size
    /// (<paramref name="total"/>, when the answer tells it) must be those of this answer.
    /// </summary>
    private void ThrowIfChanged(HttpResponseMessage response, long? total)
    {
        if (_validators.DifferenceTo(HttpValidators.Of(response)) is { } how)
        {
            throw Changed(how);
        }

        if (total is { } size && size != _length)
        {
            throw Changed($"its size is now {size} bytes, not {_length}");
        }
    }

    /// <summary>Every request asks for <c>Accept-Encoding: identity</c>; a compressed body would be other bytes than the file's.</summary>
    private void ThrowIfEncoded(HttpResponseMessage response, Uri url)
    {
        var codings = response.Content.Headers.ContentEncoding;
        if (codings.Any(c => !string.Equals(c, "identity", StringComparison.OrdinalIgnoreCase)))
        {
            throw new SourceException($"{_protocol}: server answered with 'Content-Encoding: {string.Join(", ", codings)}' for '{Display(url)}' although the request allowed only 'Accept-Encoding: identity'; "
                + "refusing compressed bytes in place of the file's (turn compression off for this file on the server)");
        }
    }

    private RemoteFileChangedException Changed(string how) =>
        new($"{_protocol}: the file at '{Display(_originalUrl)}' changed on the server since it was opened ({how}); reopen it to read the new version");

    private void ThrowIfError(HttpResponseMessage response, string doing, Uri url)
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
        throw new SourceException($"{_protocol}: server answered {status} {response.ReasonPhrase} {doing} '{Display(url)}'{hint}") { IsTransient = transient };
    }

    private HttpRequestMessage NewRequest(HttpMethod method, Uri url)
    {
        var request = new HttpRequestMessage(method, url);
        if (url.Scheme == "https")
        {
            request.Version = HttpVersion.Version20;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
        }

        if (_options.UserAgent is not null)
        {
            request.Headers.TryAddWithoutValidation("User-Agent", _options.UserAgent);
        }
        else
        {
            request.Headers.UserAgent.Add(new ProductInfoHeaderValue("UrlDisk", ProductVersion));
        }

        // The disk's bytes, not a compressed representation of them (a gzip-encoded range is refused).
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));

        // Credentials, the cookie among them, go only to the origin they were given for, not to a redirect target
        // elsewhere (curl's CVE-2022-27776).
        if (SameOrigin(url, _originalUrl))
        {
            request.Headers.Authorization = _authorization;
            if (_options.Cookie is not null)
            {
                request.Headers.TryAddWithoutValidation("Cookie", _options.Cookie);
            }

            AddHeaderLines(request, _options.Headers);
            request.Options.Set(ScriptGenerationKey, Volatile.Read(ref _scriptGeneration));
            AddHeaderLines(request, _scriptHeaders);
        }

        return request;
    }

    /// <summary>Lines from <c>header</c> and <c>header-script</c>: each replaces a header of the same name (Authorization included).</summary>
    private static void AddHeaderLines(HttpRequestMessage request, IReadOnlyList<string> lines)
    {
        foreach (var line in lines)
        {
            var (name, value) = HttpHeaderLines.Split(line);
            request.Headers.Remove(name);
            request.Headers.TryAddWithoutValidation(name, value);
        }
    }

    /// <summary>Runs <c>header-script</c> unless another request already did since <paramref name="seenGeneration"/>.</summary>
    private async Task RefreshScriptHeadersAsync(int seenGeneration, CancellationToken ct)
    {
        await _scriptLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _scriptGeneration) != seenGeneration)
            {
                return;
            }

            _logger.LogInformation("{Protocol}: running header-script for fresh headers", _protocol);
            _scriptHeaders = await HeaderScript.RunAsync(_options.HeaderScript!, _protocol, _options.Timeout, ct).ConfigureAwait(false);
            Interlocked.Increment(ref _scriptGeneration);
        }
        finally
        {
            _scriptLock.Release();
        }
    }

    /// <summary>The same request again, with the headers <c>header-script</c> printed now.</summary>
    private HttpRequestMessage Rebuild(HttpRequestMessage old)
    {
        var request = NewRequest(old.Method, old.RequestUri!);
        request.Headers.Range = old.Headers.Range;
        request.Headers.IfRange = old.Headers.IfRange;
        return request;
    }

    private static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    /// <summary>Sends <paramref name="request"/> and waits for the answer's headers until <paramref name="token"/> (the caller's stall timeout) fires.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken token, CancellationToken userToken)
    {
        var response = await SendOnceAsync(request, token, userToken).ConfigureAwait(false);
        if (_options.HeaderScript is not null && response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
            && request.Options.TryGetValue(ScriptGenerationKey, out int generation))
        {
            // An expired token: the script makes fresh headers and the request goes again, once.
            _logger.LogInformation("{Protocol}: {Status} from {Url}; renewing the headers with header-script", _protocol, (int)response.StatusCode, Display(request.RequestUri!));
            response.Dispose();
            await RefreshScriptHeadersAsync(generation, token).ConfigureAwait(false);
            using var again = Rebuild(request);
            response = await SendOnceAsync(again, token, userToken).ConfigureAwait(false);
        }

        return response;
    }

    private async Task<HttpResponseMessage> SendOnceAsync(HttpRequestMessage request, CancellationToken token, CancellationToken userToken)
    {
        UrlDiskMetrics.Requests.Add(1, _tag);
        try
        {
            var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token).ConfigureAwait(false);
            if (_logger.IsEnabled(LogLevel.Debug))
            {
                _logger.LogDebug("{Protocol}: {Method} {Url} range {Range} -> {Status} {Reason}", _protocol, request.Method, Display(request.RequestUri!),
                    request.Headers.Range?.ToString() ?? "none", (int)response.StatusCode, response.ReasonPhrase);
            }

            return response;
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
        _scriptLock.Dispose();
        return ValueTask.CompletedTask;
    }
}
