using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>A request the fault server saw: what the client asked and what it was answered.</summary>
public sealed record FaultRequest(int Number, string Method, string Path, string? Range, string? IfRange, string? IfMatch, string ConnectionId,
    IReadOnlyDictionary<string, string> Headers)
{
    /// <summary>A request header's value (case-insensitive name), or null when it was not sent.</summary>
    public string? Header(string name) => Headers.TryGetValue(name, out var v) ? v : null;

    /// <summary>Status code the handler set (also when it then cut the answer short); 0 until the handler is done.</summary>
    public int Status { get; set; }
}

/// <summary>Answers one request for a path; <paramref name="number"/> counts that path's requests from 1.</summary>
public delegate Task FaultHandler(HttpContext context, int number);

/// <summary>
/// An in-process HTTP server (Kestrel on 127.0.0.1, free port) for faults real servers will not produce:
/// 200 instead of 206, wrong Content-Range, resets mid-body, 503s, stalls, a HEAD that is refused,
/// redirect chains, a file that changes. Each test maps its own paths to handlers; every request is recorded.
/// </summary>
public sealed class FaultHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, FaultHandler> _handlers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _counts = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<FaultRequest> _requests = new();

    private FaultHttpServer(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public static async Task<FaultHttpServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0);

            // Stalls are deliberate here; Kestrel must not cut them short.
            k.Limits.MinResponseDataRate = null;
            k.Limits.MinRequestBodyDataRate = null;
        });
        var app = builder.Build();
        FaultHttpServer? self = null;
        app.Run(ctx => self!.HandleAsync(ctx));
        await app.StartAsync();
        var address = new Uri(app.Urls.First());
        self = new FaultHttpServer(app, address.Port);
        return self;
    }

    public string Url(string path) => $"http://127.0.0.1:{Port}{(path.StartsWith('/') ? path : "/" + path)}";

    /// <summary>Answers requests for <paramref name="path"/> (exact, without query) with <paramref name="handler"/>.</summary>
    public void Map(string path, FaultHandler handler) => _handlers[path] = handler;

    /// <summary>Serves <paramref name="file"/> correctly at <paramref name="path"/>.</summary>
    public void Map(string path, RangeFile file) => Map(path, (ctx, _) => file.ServeAsync(ctx));

    public IReadOnlyList<FaultRequest> Requests(string? path = null)
        => _requests.Where(r => path is null || r.Path == path).OrderBy(r => r.Number).ToList();

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _app.StopAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
        }

        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        string path = ctx.Request.Path.Value ?? "/";
        int number = _counts.AddOrUpdate(path, 1, (_, n) => n + 1);
        var h = ctx.Request.Headers;
        var headers = h.ToDictionary(kv => kv.Key, kv => kv.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        var record = new FaultRequest(number, ctx.Request.Method, path, Header(h.Range), Header(h.IfRange), Header(h.IfMatch), ctx.Connection.Id, headers);
        _requests.Enqueue(record);
        try
        {
            if (_handlers.TryGetValue(path, out var handler))
            {
                await handler(ctx, number);
            }
            else
            {
                ctx.Response.StatusCode = StatusCodes.Status404NotFound;
            }
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client gave up (a stall it timed out on): nothing more to send.
        }
        finally
        {
            record.Status = ctx.Response.StatusCode;
        }
    }

    private static string? Header(Microsoft.Extensions.Primitives.StringValues v) => v.Count == 0 ? null : v.ToString();
}
