using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using UrlDisk.Cli.Serve;
using UrlDisk.Layers.Prefetch;
using UrlDisk.Nbd;
using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary>
/// <c>urldisk serve</c>: exports any image spec over NBD, with qemu-nbd's options.
/// Like qemu-nbd it serves one client at a time and exits when that client leaves, unless
/// <c>--shared</c> and <c>--persistent</c> say otherwise. SIGINT/SIGTERM stop it gracefully (exit 0).
/// </summary>
internal static class ServeVerb
{
    public static Command Create()
    {
        var filename = new Argument<string?>("filename") { Description = "Path, URL or json: spec of the image to export", Arity = ArgumentArity.ZeroOrOne };
        var socket = new Option<string?>("--socket", "-k") { Description = "Listen on this Unix socket instead of TCP" };
        var bind = new Option<string>("--bind", "-b") { Description = "TCP address to listen on", DefaultValueFactory = _ => "127.0.0.1" };
        var port = CliCommon.WholeNumber("--port", "-p", "TCP port to listen on (0 picks a free one)", 10809, 0, 65535);
        var exportName = new Option<string>("--export-name", "-x") { Description = "Name of the export (default: empty, the default export)", DefaultValueFactory = _ => "" };
        var description = new Option<string?>("--description", "-D") { Description = "Human-readable description of the export" };
        var readOnly = new Option<bool>("--read-only", "-r") { Description = "Export read-only (remote sources always are)" };
        var copyOnRead = new Option<bool>("--copy-on-read") { Description = "Copy data read from a backing file into the image (qcow2 overlays)" };
        var shared = CliCommon.WholeNumber("--shared", "-e", "Clients served at once, as qemu-nbd (0: up to 1024); more than 1 also advertises multi-conn", 1, 0, int.MaxValue,
            "0 (up to 1024 at once) or a positive number of clients");
        var persistent = new Option<bool>("--persistent", "-t") { Description = "Keep serving after the last client disconnects" };
        var pidFile = new Option<string?>("--pid-file") { Description = "Write the process id to this file once listening" };
        var timeout = new Option<int>("--timeout") { Description = "Seconds a client's replies may make no progress (it stopped reading) before it is dropped", DefaultValueFactory = _ => 30 };
        var recordProfile = new Option<string?>("--record-profile") { Description = "Record which bytes the client reads while it boots (until idle 20 s, at most 120 s) into this boot profile", HelpName = "FILE" };
        var prefetchProfile = new Option<string?>("--prefetch-profile") { Description = "Fetch the bytes a boot profile recorded ahead of the client, in parallel large requests", HelpName = "FILE" };
        var format = CliCommon.Format();
        var imageOpts = CliCommon.ImageOpts();
        var cmd = new Command("serve", "Export an image over NBD (like qemu-nbd)")
        {
            filename, socket, bind, port, exportName, description, readOnly, copyOnRead, shared, persistent, pidFile, timeout, format, imageOpts,
            recordProfile, prefetchProfile,
        };
        var qemuNbd = new QemuNbdOptions();
        qemuNbd.AddTo(cmd);
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string? socketPath = r.GetValue(socket);
            if (r.GetValue(qemuNbd.List))
            {
                return await ServeList.RunAsync(ServeList.AddressOf(r.GetValue(filename), socketPath, r.GetValue(bind)!, r.GetValue(port), qemuNbd.ListTls(r)), ct).ConfigureAwait(false);
            }

            string spec = r.GetValue(filename) ?? throw new OptionException("serve: give the image to export (a path, URL or json: spec), or --list");
            var extra = qemuNbd.Check(r);
            using var certificate = QemuNbdOptions.LoadCertificate(extra);
            if (r.GetValue(qemuNbd.Fork) && !BackgroundStart.IsChild(ForkChildVariable))
            {
                return await BackgroundStart.RunAsync("--fork", ForkChildVariable, ServingMarker, "export", ct).ConfigureAwait(false);
            }

            int tcpPort = r.GetValue(port);
            int sharedCount = r.GetValue(shared);
            string name = r.GetValue(exportName) ?? "";
            if (socketPath is not null && (r.GetResult(bind) is { Implicit: false } || r.GetResult(port) is { Implicit: false }))
            {
                throw new OptionException("--socket and --bind/--port exclude each other; give one");
            }

            if (socketPath is not null)
            {
                CliCommon.RequirePath(socketPath, "--socket");
            }

            if (r.GetValue(pidFile) is { } pid)
            {
                CliCommon.RequirePath(pid, "--pid-file");
            }

            int replyTimeout = r.GetValue(timeout);
            if (replyTimeout is < 1 or > 10000)
            {
                throw new OptionException($"--timeout: {replyTimeout} is not allowed; use 1..10000 seconds");
            }

            if (name.Length > 4096 || name.Contains('\0'))
            {
                throw new OptionException("--export-name: at most 4096 bytes, no NUL characters");
            }

            var profile = BootProfiles(r.GetValue(recordProfile), r.GetValue(prefetchProfile));

            // Listen first, then open: a client (or a script waiting for the socket) can connect at once, and waits in
            // the backlog while the image opens (an HTTP source's first round trips); no work is done before listen.
            using var listener = Listen(socketPath, r.GetValue(bind)!, tcpPort, out string uri, name);
            string? pidPath = r.GetValue(pidFile);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; CancelUnlessDisposed(stop); });
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; CancelUnlessDisposed(stop); });
            try
            {
                if (pidPath is not null)
                {
                    await File.WriteAllTextAsync(pidPath, Environment.ProcessId + "\n", CancellationToken.None).ConfigureAwait(false);
                }

                await using var image = await OpenExportAsync(spec, r.GetValue(imageOpts), r.GetValue(format), r.GetValue(readOnly), r.GetValue(copyOnRead), r.GetValue(qemuNbd.Snapshot), extra, profile, stop.Token).ConfigureAwait(false);
                var server = new NbdServer(image, new NbdServerOptions
                {
                    ExportName = name,
                    Description = r.GetValue(description),
                    ReadOnly = r.GetValue(readOnly),
                    MaxConnections = sharedCount,
                    Persistent = r.GetValue(persistent),
                    ReplyTimeout = TimeSpan.FromSeconds(replyTimeout),
                    AllocationDepth = r.GetValue(qemuNbd.AllocationDepth),
                    ChainEndsInRawFile = r.GetValue(qemuNbd.AllocationDepth) && await ChainBottom.IsRawAsync(image, stop.Token).ConfigureAwait(false),
                    TlsCertificate = certificate,
                    Log = Console.Error,

                    // Program.cs gives 30 s after SIGINT/SIGTERM before the process is ended: finish in flight well before that.
                    ShutdownGrace = TimeSpan.FromSeconds(5),
                });

                string mode = server.Writable ? "read-write" : "read-only";
                Console.Error.WriteLine($"{ServingMarker}{InfoVerb.DisplayFilename(spec)} ({mode}, {image.Length} bytes) on {uri}");
                if (BackgroundStart.IsChild(ForkChildVariable))
                {
                    BackgroundStart.Detach();
                }

                await server.RunAsync(listener, stop.Token).ConfigureAwait(false);
            }
            finally
            {
                listener.Close();
                if (socketPath is not null)
                {
                    TryDelete(socketPath);
                }

                if (pidPath is not null)
                {
                    TryDelete(pidPath);
                }
            }

            return 0;
        }));
        return cmd;
    }

    private const string ServingMarker = "urldisk: serving ";

    /// <summary>Where boot profiles live inside a disk cache directory (<c>cache clear</c> empties it too).</summary>
    internal const string ProfilesFolder = BootProfileRequest.DiskCacheFolder;

    /// <summary>Set in the background copy <c>--fork</c> starts: it detaches once serving.</summary>
    private const string ForkChildVariable = "URLDISK_SERVE_FORK_CHILD";

    /// <summary>The image as exported: through a temporary overlay with -s, a window with -o, discard and zero detection.</summary>
    private static async ValueTask<IBlockDevice> OpenExportAsync(string spec, bool imageOpts, string? format, bool readOnly, bool copyOnRead, bool snapshot, QemuNbdOptions.Settings extra, BootProfileRequest? profile, CancellationToken ct)
    {
        var image = snapshot
            ? await ServeSnapshot.OpenAsync(spec, imageOpts, format, readOnly, copyOnRead, ct).ConfigureAwait(false)
            : await OpenAsync(spec, imageOpts, format, readOnly, copyOnRead, ct, profile: profile).ConfigureAwait(false);
        if (!ServeFilter.Needed(extra.Offset, extra.Discard, extra.DetectZeroes))
        {
            return image;
        }

        if (extra.Offset > image.Length)
        {
            await image.DisposeAsync().ConfigureAwait(false);
            throw new OptionException($"--offset: {extra.Offset} is past the end of the image ({image.Length} bytes)");
        }

        return new ServeFilter(image, extra.Offset, extra.Discard, extra.DetectZeroes);
    }

    /// <summary>
    /// Opens for writing when the image is a local file and --read-only is absent (remote sources are read-only);
    /// a local file we may not write is served read-only, as qemu-nbd does with auto-read-only.
    /// </summary>
    internal static async ValueTask<IBlockDevice> OpenAsync(string spec, bool imageOpts, string? format, bool readOnly, bool copyOnRead, CancellationToken ct, string fallbackVerb = "serving", BootProfileRequest? profile = null)
    {
        var tree = CliCommon.ParseSpec(spec, imageOpts);
        var context = new OpenContext { Writable = !readOnly && IsLocalFile(tree), CopyOnRead = copyOnRead, BootProfile = profile };
        try
        {
            return await ImageOpener.OpenAsync(tree, format, context, ct).ConfigureAwait(false);
        }
        catch (SourceException e) when (!readOnly && e.InnerException is UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"urldisk: {InfoVerb.DisplayFilename(spec)} is not writable; {fallbackVerb} it read-only");
            return await ImageOpener.OpenAsync(tree, format, context with { Writable = false }, ct).ConfigureAwait(false);
        }
    }

    /// <summary>--record-profile/--prefetch-profile as one request, checked before the server listens; null when neither is given.</summary>
    /// <remarks>
    /// Without either flag, a source read through a disk cache (<c>cache-dir=</c>, <c>--cache-dir</c>,
    /// <c>URLDISK_CACHE_DIR</c>) keeps one profile per image version in DIR/profiles: the first serve of an image records
    /// it, later ones prefetch it.
    /// </remarks>
    private static BootProfileRequest? BootProfiles(string? record, string? prefetch)
    {
        if (record is null && prefetch is null)
        {
            return new BootProfileRequest { InDiskCache = true, Note = line => Console.Error.WriteLine($"urldisk: {line}") };
        }

        var request = new BootProfileRequest
        {
            RecordFile = record is null ? null : CliCommon.RequirePath(record, "--record-profile"),
            PrefetchFile = prefetch is null ? null : CliCommon.RequirePath(prefetch, "--prefetch-profile"),
            Note = line => Console.Error.WriteLine($"urldisk: {line}"),
        };
        request.Validate();
        return request;
    }

    /// <summary>True when the image's own protocol node (not its backing chain) is a local file.</summary>
    internal static bool IsLocalFile(OptionTree tree)
    {
        var node = tree.HasChild("file") ? tree.Child("file") : tree;
        string? driver = node["driver"];
        if (driver is not null && driver != "file")
        {
            return false;
        }

        string? name = node["filename"] ?? node["url"];
        return name is not null && ImageOpener.SchemeOf(name) is null or "file";
    }

    private static Socket Listen(string? socketPath, string bind, int port, out string uri, string exportName)
    {
        Socket listener;
        string export = Uri.EscapeDataString(exportName);
        if (socketPath is not null)
        {
            string full = Path.GetFullPath(socketPath);
            ReplaceStaleSocket(socketPath, full);

            listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                listener.Bind(new UnixDomainSocketEndPoint(full));
                listener.Listen(64);
            }
            catch (SocketException e)
            {
                listener.Dispose();
                throw new OptionException($"--socket: cannot listen on '{socketPath}': {e.Message}");
            }

            uri = $"nbd+unix:///{export}?socket={full}";
            return listener;
        }

        if (!IPAddress.TryParse(bind, out var address))
        {
            try
            {
                address = bind.Length == 0 ? null : Dns.GetHostAddresses(bind).FirstOrDefault();
            }
            catch (SocketException)
            {
                address = null;
            }

            if (address is null)
            {
                throw new OptionException($"--bind: '{bind}' is not an IP address or a host name that resolves; use an address such as 127.0.0.1 or ::1");
            }
        }

        listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(new IPEndPoint(address, port));
            listener.Listen(64);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new OptionException($"--bind/--port: cannot listen on {bind}:{port}: {e.Message}");
        }

        var ep = (IPEndPoint)listener.LocalEndPoint!;
        string host = ep.Address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ep.Address}]" : ep.Address.ToString();
        uri = $"nbd://{host}:{ep.Port}/{export}";
        return listener;
    }

    /// <summary>
    /// A socket file nobody listens on (left by a serve killed with SIGKILL) is removed, as qemu-nbd does; a socket
    /// someone listens on, or a path that is anything but a socket, is refused.
    /// </summary>
    private static void ReplaceStaleSocket(string given, string full)
    {
        if (!File.Exists(full) && !Directory.Exists(full))
        {
            return;
        }

        if (UnixFileType.Of(full) != UnixFileType.Socket)
        {
            throw new OptionException($"--socket: '{given}' already exists and is not a socket; remove it or pick another path");
        }

        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(full));
                throw new OptionException($"--socket: '{given}' is in use by another server; stop it or pick another path");
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                // Nobody listens: a leftover.
            }
        }

        File.Delete(full);
    }

    /// <summary>
    /// The runtime runs signal handlers on their own thread from the registrations it saw when the signal arrived, and
    /// System.CommandLine's handler cancels the verb too, so ours can run after serve returned and disposed
    /// <paramref name="stop"/>. An exception there is unhandled: the process aborted (exit 134) after a clean shutdown.
    /// </summary>
    private static void CancelUnlessDisposed(CancellationTokenSource stop)
    {
        try
        {
            stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
