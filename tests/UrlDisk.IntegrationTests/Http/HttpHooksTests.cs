using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.Opening;
using UrlDisk.Sources.Http;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>header=, bearer-token-file, user-agent, header-script and a handler from code: what reaches the server, and what never leaks.</summary>
public sealed class HttpHooksTests
{
    private const string Token = "Tok3n-Secret-Qwz";

    private static string Spec(string url, JsonNode options)
    {
        var file = new JsonObject { ["driver"] = "http", ["url"] = url };
        foreach (var (k, v) in options.AsObject())
        {
            file[k] = v?.DeepClone();
        }

        return "json:" + new JsonObject { ["driver"] = "raw", ["file"] = file }.ToJsonString();
    }

    [Fact]
    public async Task Headers_bearer_token_and_user_agent_reach_the_server_through_the_library()
    {
        await using var server = await FaultHttpServer.StartAsync();
        var data = ImageFactory.Random(256 * 1024, seed: 141);
        server.Map("/disk.img", new RangeFile(data));
        using var tmp = new TempDir();
        string tokenFile = tmp.File("token");
        await File.WriteAllTextAsync(tokenFile, Token + "\n");
        var options = new JsonObject
        {
            ["header"] = new JsonArray("X-Tenant: blue", "X-Trace: 7"),
            ["bearer-token-file"] = tokenFile,
            ["user-agent"] = "my-agent/2.0",
        };
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using (var device = await DeviceReads.OpenRawAsync(Spec(server.Url("/disk.img"), options), cts.Token))
        {
            await DeviceReads.AssertRandomReadsAsync(device, data, count: 5, seed: 142, cts.Token);
        }

        var requests = server.Requests("/disk.img");
        Assert.NotEmpty(requests);
        Assert.All(requests, r =>
        {
            Assert.Equal("blue", r.Header("X-Tenant"));
            Assert.Equal("7", r.Header("X-Trace"));
            Assert.Equal("Bearer " + Token, r.Header("Authorization"));
            Assert.Equal("my-agent/2.0", r.Header("User-Agent"));
        });
    }

    [Fact]
    public async Task Repeated_header_options_reach_the_server_from_the_cli_and_are_never_printed()
    {
        await using var server = await FaultHttpServer.StartAsync();
        var data = ImageFactory.Random(128 * 1024, seed: 143);
        server.Map("/disk.img", new RangeFile(data));
        string spec = HttpSpecs.ImageOpts("http", server.Url("/disk.img"), ("header", "X-Api-Key: " + Token), ("header", "X-Other: two"));
        var r = await UrlDiskCli.RunAsync("-v", "info", "--image-opts", spec);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.All(server.Requests("/disk.img"), q =>
        {
            Assert.Equal(Token, q.Header("X-Api-Key"));
            Assert.Equal("two", q.Header("X-Other"));
        });
        CliAssert.NeverShows(r, Token);

        // A failure (no such file) prints the spec's header values redacted too.
        var missing = await UrlDiskCli.RunAsync("info", "--image-opts", HttpSpecs.ImageOpts("http", server.Url("/missing.img"), ("header", "X-Api-Key: " + Token)));
        CliAssert.Fails(missing, "404");
        CliAssert.NeverShows(missing, Token);
    }

    [Fact]
    public async Task Headers_and_bearer_token_are_not_sent_after_a_redirect_to_another_origin()
    {
        await using var origin = await FaultHttpServer.StartAsync();
        await using var elsewhere = await FaultHttpServer.StartAsync();
        var data = ImageFactory.Random(128 * 1024, seed: 144);
        elsewhere.Map("/disk.img", new RangeFile(data));
        origin.Map("/disk.img", (ctx, _) =>
        {
            ctx.Response.StatusCode = 302;
            ctx.Response.Headers.Location = elsewhere.Url("/disk.img");
            return Task.CompletedTask;
        });
        using var tmp = new TempDir();
        string tokenFile = tmp.File("token");
        await File.WriteAllTextAsync(tokenFile, Token);
        var options = new JsonObject { ["header"] = "X-Api-Key: " + Token, ["bearer-token-file"] = tokenFile };
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using (var device = await DeviceReads.OpenRawAsync(Spec(origin.Url("/disk.img"), options), cts.Token))
        {
            await DeviceReads.AssertRandomReadsAsync(device, data, count: 3, seed: 145, cts.Token);
        }

        Assert.All(origin.Requests("/disk.img"), q => Assert.Equal(Token, q.Header("X-Api-Key")));
        Assert.NotEmpty(elsewhere.Requests("/disk.img"));
        Assert.All(elsewhere.Requests("/disk.img"), q =>
        {
            Assert.Null(q.Header("X-Api-Key"));
            Assert.Null(q.Header("Authorization"));
        });
    }

    [Fact]
    public async Task Header_script_runs_again_when_the_server_answers_401()
    {
        await using var server = await FaultHttpServer.StartAsync();
        var data = ImageFactory.Random(256 * 1024, seed: 146);
        var file = new RangeFile(data);
        using var tmp = new TempDir();
        string counter = tmp.File("runs");
        await File.WriteAllTextAsync(counter, "0");

        // The token printed by the script's first run has "expired" already: only the second one is accepted.
        string script = $"n=$(cat '{counter}'); n=$((n+1)); echo $n > '{counter}'; echo \"X-Token: t$n\"";
        server.Map("/disk.img", (ctx, _) =>
        {
            if (ctx.Request.Headers["X-Token"].ToString() != "t2")
            {
                ctx.Response.StatusCode = 401;
                return Task.CompletedTask;
            }

            return file.ServeAsync(ctx);
        });
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using (var device = await DeviceReads.OpenRawAsync(Spec(server.Url("/disk.img"), new JsonObject { ["header-script"] = script }), cts.Token))
        {
            await DeviceReads.AssertRandomReadsAsync(device, data, count: 5, seed: 147, cts.Token);
        }

        Assert.Equal("2", (await File.ReadAllTextAsync(counter)).Trim());
        var requests = server.Requests("/disk.img");
        Assert.Equal(401, requests[0].Status);
        Assert.Equal("t1", requests[0].Header("X-Token"));
        Assert.All(requests.Skip(1), q => Assert.Equal("t2", q.Header("X-Token")));
    }

    [Fact]
    public async Task Typed_options_and_a_handler_factory_open_an_image_from_code()
    {
        await using var server = await FaultHttpServer.StartAsync();
        var data = ImageFactory.Random(128 * 1024, seed: 148);
        server.Map("/disk.img", new RangeFile(data));
        int sent = 0;
        var context = new OpenContext
        {
            HttpMessageHandlerFactory = () => new CountingHandler(() => Interlocked.Increment(ref sent)) { InnerHandler = new SocketsHttpHandler { AllowAutoRedirect = false } },
        };
        var options = new HttpSourceOptions { Url = new Uri(server.Url("/disk.img")), Headers = ["X-From-Code: yes"] };
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using (var device = await ImageOpener.OpenAsync(options, "raw", context, cts.Token))
        {
            await DeviceReads.AssertRandomReadsAsync(device, data, count: 3, seed: 149, cts.Token);
        }

        Assert.True(sent > 0, "the handler from the factory carried no request");
        Assert.Equal(server.Requests("/disk.img").Count, sent);
        Assert.All(server.Requests("/disk.img"), q => Assert.Equal("yes", q.Header("X-From-Code")));
    }

    [Fact]
    public async Task A_bad_header_option_names_the_option_and_not_its_value()
    {
        var ex = await Assert.ThrowsAsync<OptionException>(async () =>
            await ImageOpener.OpenAsync(Spec("http://127.0.0.1:9/x.img", new JsonObject { ["header"] = "no colon " + Token })));
        Assert.Contains("header", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Token, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requests_retries_and_redirects_are_logged_without_credentials()
    {
        await using var server = await FaultHttpServer.StartAsync();
        var data = ImageFactory.Random(256 * 1024, seed: 150);
        var file = new RangeFile(data);
        server.Map("/moved.img", (ctx, _) =>
        {
            ctx.Response.StatusCode = 301;
            ctx.Response.Headers.Location = "/disk.img";
            return Task.CompletedTask;
        });
        server.Map("/disk.img", (ctx, n) =>
        {
            if (n == 2)
            {
                ctx.Response.StatusCode = 503;
                return Task.CompletedTask;
            }

            return file.ServeAsync(ctx);
        });
        var logs = new CollectingLoggerFactory();
        string url = server.Url("/moved.img").Replace("http://", "http://alice:" + Token + "@", StringComparison.Ordinal);
        using var cts = new CancellationTokenSource(DeviceReads.Limit);
        await using (var device = await ImageOpener.OpenAsync(url, "raw", new OpenContext { LoggerFactory = logs }, cts.Token))
        {
            var buffer = new byte[4096];
            await device.ReadAsync(65536, buffer, cts.Token);
            ImageFactory.AssertSameBytes(data.AsSpan(65536, 4096), buffer, "read after a 503");
        }

        var lines = logs.Lines.ToList();
        string all = string.Join('\n', lines.Select(l => $"{l.Level} {l.Category} {l.Message}"));
        Assert.Contains(lines, l => l.Level == LogLevel.Debug && l.Message.Contains("HEAD " + server.Url("/moved.img"), StringComparison.Ordinal) && l.Message.Contains("301", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Message.Contains("redirect to " + server.Url("/disk.img"), StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Level == LogLevel.Debug && l.Message.Contains("GET " + server.Url("/disk.img"), StringComparison.Ordinal) && l.Message.Contains("bytes=", StringComparison.Ordinal) && l.Message.Contains("206", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Level == LogLevel.Information && l.Message.Contains("retry 1", StringComparison.Ordinal) && l.Message.Contains("503", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Message.Contains("ETag", StringComparison.Ordinal));
        Assert.DoesNotContain(Token, all, StringComparison.Ordinal);
        Assert.DoesNotContain("alice", all, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verbose_and_URLDISK_LOG_send_the_log_to_stderr()
    {
        await using var server = await FaultHttpServer.StartAsync();
        server.Map("/disk.img", new RangeFile(ImageFactory.Random(128 * 1024, seed: 151)));
        string url = server.Url("/disk.img");

        var quiet = await UrlDiskCli.RunAsync("info", url);
        Assert.True(quiet.ExitCode == 0, quiet.ToString());
        Assert.DoesNotContain("HEAD " + url, quiet.Stderr, StringComparison.Ordinal);

        var verbose = await UrlDiskCli.RunAsync("-v", "info", url);
        Assert.True(verbose.ExitCode == 0, verbose.ToString());
        Assert.Contains("HEAD " + url, verbose.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("HEAD " + url, verbose.Stdout, StringComparison.Ordinal);

        var environment = new Dictionary<string, string?> { ["URLDISK_LOG"] = "debug" };
        var fromEnvironment = await UrlDiskCli.RunAsync(["info", url], environment: environment);
        Assert.True(fromEnvironment.ExitCode == 0, fromEnvironment.ToString());
        Assert.Contains("HEAD " + url, fromEnvironment.Stderr, StringComparison.Ordinal);
    }

    private sealed class CountingHandler(Action counted) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            counted();
            return base.SendAsync(request, cancellationToken);
        }
    }
}

/// <summary>An <see cref="ILoggerFactory"/> that keeps every line, for tests of what the library logs.</summary>
internal sealed class CollectingLoggerFactory : ILoggerFactory
{
    public ConcurrentQueue<(LogLevel Level, string Category, string Message)> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose()
    {
    }

    private sealed class Logger(CollectingLoggerFactory owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => owner.Lines.Enqueue((logLevel, category, formatter(state, exception)));
    }
}
