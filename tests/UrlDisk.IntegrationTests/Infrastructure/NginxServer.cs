using System.Globalization;
using System.Text;

namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>Extra knobs for an nginx instance.</summary>
public sealed record NginxOptions
{
    /// <summary>Serve HTTP/2 on the TLS listener (ALPN h2) besides HTTP/1.1.</summary>
    public bool Http2 { get; init; }

    /// <summary>More directives inside the <c>server { }</c> block (extra locations, limits).</summary>
    public string ExtraServerConfig { get; init; } = "";
}

/// <summary>
/// A real nginx on 127.0.0.1 with an http and an https (self-signed) listener on free ports, a docroot,
/// a basic-auth area under <c>/auth/</c>, a cookie-protected area under <c>/cookie/</c>, a redirect under
/// <c>/redirect/</c> (302 to the same path without the prefix), and an access log the tests read to count requests and see Range headers.
/// Everything lives in a temp prefix directory removed on dispose.
/// </summary>
public sealed class NginxServer : IAsyncDisposable
{
    public const string AuthUser = "urldisk";
    public const string AuthPassword = "s3cret-Pass!word";

    /// <summary>Files under <c>/cookie/</c> are served only with the cookie <see cref="CookieName"/>=<see cref="CookieValue"/>.</summary>
    public const string CookieName = "urldisk_session";
    public const string CookieValue = "c00kie-Value-42";

    private readonly TempDir _dir;
    private readonly RunningProcess _process;

    private NginxServer(TempDir dir, RunningProcess process, int httpPort, int httpsPort, TestCertificate certificate)
    {
        _dir = dir;
        _process = process;
        HttpPort = httpPort;
        HttpsPort = httpsPort;
        Certificate = certificate;
    }

    public int HttpPort { get; }

    public int HttpsPort { get; }

    /// <summary>The self-signed certificate the https listener presents (usable as a CA file).</summary>
    public TestCertificate Certificate { get; }

    /// <summary>Files here are served at <c>/</c>; files under <c>auth/</c> need <see cref="AuthUser"/>:<see cref="AuthPassword"/>.</summary>
    public string DocRoot => Path.Combine(_dir.Path, "html");

    public string AccessLogPath => Path.Combine(_dir.Path, "access.log");

    public string ErrorLogPath => Path.Combine(_dir.Path, "error.log");

    public static async Task<NginxServer> StartAsync(NginxOptions? options = null)
    {
        options ??= new NginxOptions();
        string nginx = ProcessRunner.RequireTool("nginx", "nginx-light");
        var dir = new TempDir("urldisk-nginx");
        try
        {
            Directory.CreateDirectory(Path.Combine(dir.Path, "html", "auth"));
            Directory.CreateDirectory(Path.Combine(dir.Path, "tmp"));
            var cert = await TestCertificate.CreateAsync(dir.Path);
            await WriteHtpasswdAsync(Path.Combine(dir.Path, "htpasswd"));

            // Another process may take a port between choosing it and nginx binding it: try again with new ones.
            for (int attempt = 1; ; attempt++)
            {
                int http = FreePort.Get();
                int https = FreePort.Get();
                while (https == http)
                {
                    // The kernel may hand the port just released straight back: two listeners need two ports.
                    https = FreePort.Get();
                }

                string conf = Path.Combine(dir.Path, "nginx.conf");
                await File.WriteAllTextAsync(conf, Config(dir.Path, http, https, cert, options));
                var process = ProcessRunner.Start(nginx, ["-p", dir.Path, "-e", Path.Combine(dir.Path, "error.log"), "-c", conf, "-g", "daemon off;"], TestEnvironment.NoProxy);
                var timeout = TimeSpan.FromSeconds(15);
                if (await FreePort.WaitUntilListeningAsync(http, timeout, () => process.HasExited)
                    && await FreePort.WaitUntilListeningAsync(https, timeout, () => process.HasExited))
                {
                    return new NginxServer(dir, process, http, https, cert);
                }

                await process.DisposeAsync();
                string log = File.Exists(Path.Combine(dir.Path, "error.log")) ? await File.ReadAllTextAsync(Path.Combine(dir.Path, "error.log")) : "";
                if (attempt >= 5 || !log.Contains("Address already in use", StringComparison.Ordinal))
                {
                    throw new InvalidOperationException($"nginx did not start: stderr: {process.Stderr}\nerror.log: {log}");
                }
            }
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    /// <summary>Puts a file in the docroot (relative path, may be under <c>auth/</c>) and returns its URL path.</summary>
    public string Put(string relativePath, ReadOnlySpan<byte> data)
    {
        string full = Path.Combine(DocRoot, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, data.ToArray());
        return "/" + relativePath.Replace('\\', '/');
    }

    /// <summary>Same, leaving zero blocks as holes so large sparse images cost little disk.</summary>
    public string PutSparse(string relativePath, ReadOnlySpan<byte> data)
    {
        string full = Path.Combine(DocRoot, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        ImageFactory.WriteSparse(full, data);
        return "/" + relativePath.Replace('\\', '/');
    }

    public string HttpUrl(string path) => $"http://127.0.0.1:{HttpPort}{Slash(path)}";

    public string HttpsUrl(string path) => $"https://127.0.0.1:{HttpsPort}{Slash(path)}";

    /// <summary>URL with <c>user:password@</c> in it (for the <c>/auth/</c> area).</summary>
    public string HttpUrlWithCredentials(string path, string user = AuthUser, string password = AuthPassword)
        => $"http://{Uri.EscapeDataString(user)}:{Uri.EscapeDataString(password)}@127.0.0.1:{HttpPort}{Slash(path)}";

    public string HttpsUrlWithCredentials(string path, string user = AuthUser, string password = AuthPassword)
        => $"https://{Uri.EscapeDataString(user)}:{Uri.EscapeDataString(password)}@127.0.0.1:{HttpsPort}{Slash(path)}";

    /// <summary>Every request logged so far, optionally only those whose URI (path and query) contains <paramref name="uriContains"/>.</summary>
    public IReadOnlyList<AccessLogEntry> Requests(string? uriContains = null)
    {
        if (!File.Exists(AccessLogPath))
        {
            return [];
        }

        using var stream = new FileStream(AccessLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var list = new List<AccessLogEntry>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }

            var e = AccessLogEntry.Parse(line);
            if (uriContains is null || e.Uri.Contains(uriContains, StringComparison.Ordinal))
            {
                list.Add(e);
            }
        }

        return list;
    }

    /// <summary>
    /// The requests once the log stops growing: nginx writes a line just after the last byte goes out,
    /// so a client can finish a hair before its request is logged.
    /// </summary>
    public async Task<IReadOnlyList<AccessLogEntry>> SettledRequestsAsync(string? uriContains = null)
    {
        var last = Requests(uriContains);
        for (int i = 0; i < 50; i++)
        {
            await Task.Delay(100);
            var now = Requests(uriContains);
            if (now.Count == last.Count)
            {
                return now;
            }

            last = now;
        }

        return last;
    }

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        _dir.Dispose();
    }

    private static string Slash(string path) => path.StartsWith('/') ? path : "/" + path;

    private static async Task WriteHtpasswdAsync(string path)
    {
        string openssl = ProcessRunner.RequireTool("openssl", "openssl");
        var r = await ProcessRunner.RunAsync(openssl, ["passwd", "-apr1", "-stdin"], TimeSpan.FromSeconds(30), stdin: AuthPassword + "\n");
        if (r.ExitCode != 0)
        {
            throw new InvalidOperationException($"openssl passwd failed: {r}");
        }

        await File.WriteAllTextAsync(path, $"{AuthUser}:{r.Stdout.Trim()}\n");
    }

    private static string Config(string prefix, int http, int https, TestCertificate cert, NginxOptions options)
    {
        // Workers would drop to 'nobody' when started as root and then fail to read the temp docroot.
        string user = Environment.IsPrivilegedProcess ? "user root root;" : "";
        string h2 = options.Http2 ? " http2" : "";
        return string.Create(CultureInfo.InvariantCulture, $$"""
            {{user}}
            worker_processes 1;
            pid {{prefix}}/nginx.pid;
            error_log {{prefix}}/error.log info;
            events { worker_connections 1024; }
            http {
                log_format urldisk "{{AccessLogEntry.LogFormat}}";
                access_log {{prefix}}/access.log urldisk;
                client_body_temp_path {{prefix}}/tmp/body;
                proxy_temp_path {{prefix}}/tmp/proxy;
                fastcgi_temp_path {{prefix}}/tmp/fastcgi;
                uwsgi_temp_path {{prefix}}/tmp/uwsgi;
                scgi_temp_path {{prefix}}/tmp/scgi;
                default_type application/octet-stream;
                sendfile on;
                tcp_nopush on;
                keepalive_requests 100000;
                keepalive_timeout 60s;
                server {
                    listen 127.0.0.1:{{http}};
                    listen 127.0.0.1:{{https}} ssl{{h2}};
                    server_name 127.0.0.1 localhost;
                    ssl_certificate {{cert.CertificatePath}};
                    ssl_certificate_key {{cert.KeyPath}};
                    root {{prefix}}/html;
                    location /auth/ {
                        auth_basic "urldisk tests";
                        auth_basic_user_file {{prefix}}/htpasswd;
                    }
                    location /redirect/ {
                        rewrite ^/redirect(/.*)$ $1 redirect;
                    }
                    location /cookie/ {
                        if ($cookie_{{CookieName}} != "{{CookieValue}}") {
                            return 403;
                        }
                    }
                    {{options.ExtraServerConfig}}
                }
            }
            """);
    }
}
