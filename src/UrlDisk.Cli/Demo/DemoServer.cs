using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace UrlDisk.Cli.Demo;

/// <summary>
/// An HTTP server on 127.0.0.1 inside the process serving the files of one folder as a careful static file
/// server does: HEAD and GET, one byte range (206 with Content-Range; 416 past the end), ETag and
/// Last-Modified, If-Range. It is the BCL's <see cref="HttpListener"/>, not Kestrel: ASP.NET Core would
/// make the native binary carry twice the code, and its start-up time grows with that.
/// </summary>
internal sealed class DemoServer : IAsyncDisposable
{
    private const int CopyBuffer = 64 * 1024;

    private readonly HttpListener _listener;
    private readonly string _folder;
    private readonly Task _accepting;

    private DemoServer(HttpListener listener, string folder, Uri baseUrl)
    {
        _listener = listener;
        _folder = Path.GetFullPath(folder);
        BaseUrl = baseUrl;
        _accepting = AcceptAsync();
    }

    public Uri BaseUrl { get; }

    public static Task<DemoServer> StartAsync(string folder, CancellationToken ct)
    {
        // HttpListener cannot listen on port 0: ask the kernel for a free port, and take another if a
        // process elsewhere takes it in between.
        for (int attempt = 1; ; attempt++)
        {
            ct.ThrowIfCancellationRequested();
            int port = FreePort();
            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                listener.Start();
                return Task.FromResult(new DemoServer(listener, folder, new Uri($"http://127.0.0.1:{port}/")));
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                listener.Close();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Close();
        await _accepting.ConfigureAwait(false);
    }

    private static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return; // closed
            }

            _ = ServeAsync(context);
        }
    }

    private async Task ServeAsync(HttpListenerContext context)
    {
        var response = context.Response;
        try
        {
            await AnswerAsync(context.Request, response).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or HttpListenerException or ObjectDisposedException)
        {
            // The client went away mid-answer (a reader that had what it needed); nothing to tell it.
        }
        finally
        {
            try
            {
                response.Close();
            }
            catch (Exception e) when (e is IOException or HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
            }
        }
    }

    private async Task AnswerAsync(HttpListenerRequest request, HttpListenerResponse response)
    {
        bool head = request.HttpMethod == "HEAD";
        if (!head && request.HttpMethod != "GET")
        {
            response.StatusCode = (int)HttpStatusCode.MethodNotAllowed;
            return;
        }

        // Only the folder's own files: no sub-folders, no way out of it.
        string name = Uri.UnescapeDataString(request.Url?.AbsolutePath.TrimStart('/') ?? "");
        string path = Path.Combine(_folder, name);
        if (name.Length == 0 || name.Contains('/', StringComparison.Ordinal) || name is "." or ".." || !File.Exists(path))
        {
            response.StatusCode = (int)HttpStatusCode.NotFound;
            return;
        }

        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, FileOptions.Asynchronous);
        long length = RandomAccess.GetLength(file);
        DateTime modified = File.GetLastWriteTimeUtc(path);
        string etag = $"\"{modified.Ticks:x}-{length:x}\"";
        string lastModified = modified.ToString("R", CultureInfo.InvariantCulture);
        response.AddHeader("ETag", etag);
        response.AddHeader("Last-Modified", lastModified);
        response.AddHeader("Accept-Ranges", "bytes");
        response.ContentType = "application/octet-stream";

        long first = 0;
        long count = length;
        string? range = request.Headers["Range"];
        string? ifRange = request.Headers["If-Range"];
        bool current = ifRange is null || ifRange == etag || ifRange == lastModified; // a stale If-Range gets the whole file
        if (range is not null && current && TryParseRange(range, length, out first, out long last))
        {
            if (first > last)
            {
                response.StatusCode = (int)HttpStatusCode.RequestedRangeNotSatisfiable;
                response.AddHeader("Content-Range", $"bytes */{length}");
                return;
            }

            count = last - first + 1;
            response.StatusCode = (int)HttpStatusCode.PartialContent;
            response.AddHeader("Content-Range", $"bytes {first}-{last}/{length}");
        }
        else
        {
            first = 0;
        }

        response.ContentLength64 = count;
        if (head)
        {
            return;
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(CopyBuffer);
        try
        {
            var output = response.OutputStream;
            for (long done = 0; done < count;)
            {
                int n = await RandomAccess.ReadAsync(file, buffer.AsMemory(0, (int)Math.Min(buffer.Length, count - done)), first + done).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new IOException($"{name} shrank while it was being served");
                }

                await output.WriteAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
                done += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// One range, <c>bytes=a-b</c>, <c>bytes=a-</c> or <c>bytes=-n</c>; false (serve the whole file) for anything else,
    /// as a server may. An unsatisfiable range comes back as <paramref name="first"/> &gt; <paramref name="last"/>.
    /// </summary>
    private static bool TryParseRange(string header, long length, out long first, out long last)
    {
        first = 0;
        last = -1;
        const string unit = "bytes=";
        if (!header.StartsWith(unit, StringComparison.OrdinalIgnoreCase) || header.Contains(',', StringComparison.Ordinal))
        {
            return false;
        }

        string spec = header[unit.Length..].Trim();
        int dash = spec.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0)
        {
            return false;
        }

        string from = spec[..dash];
        string to = spec[(dash + 1)..];
        var style = NumberStyles.None;
        if (from.Length == 0)
        {
            // The last n bytes.
            if (!long.TryParse(to, style, CultureInfo.InvariantCulture, out long suffix))
            {
                return false;
            }

            if (suffix == 0)
            {
                return true; // bytes=-0: unsatisfiable (first 0 > last -1)
            }

            first = Math.Max(0, length - suffix);
            last = length - 1;
            return true;
        }

        if (!long.TryParse(from, style, CultureInfo.InvariantCulture, out first))
        {
            return false;
        }

        if (to.Length == 0)
        {
            last = length - 1;
        }
        else if (!long.TryParse(to, style, CultureInfo.InvariantCulture, out last) || last < first)
        {
            first = 0;
            last = -1;
            return false;
        }

        if (first >= length)
        {
            last = first - 1; // unsatisfiable
            return true;
        }

        last = Math.Min(last, length - 1);
        return true;
    }
}
