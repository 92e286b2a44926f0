using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using UrlDisk.Nbd;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary>A temporary directory removed with everything in it.</summary>
internal sealed class NbdTempDir : IDisposable
{
    public NbdTempDir()
    {
        // Unix socket paths must stay short (108 bytes), so keep the directory name small.
        Path = Directory.CreateTempSubdirectory("nbd").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal sealed record ToolResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    public ToolResult EnsureSuccess()
    {
        Assert.True(ExitCode == 0, $"{Command} exited {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}");
        return this;
    }
}

/// <summary>Runs the real NBD clients (nbdinfo, nbdcopy, nbdsh, qemu-img, qemu-io). A missing tool fails the test.</summary>
internal static class NbdTool
{
    public static async Task<ToolResult> RunAsync(string file, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // nbdsh runs "python3" from PATH; the distribution's python is the one with the nbd module.
        psi.Environment["PATH"] = "/usr/bin:/bin:" + Environment.GetEnvironmentVariable("PATH");
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', psi.ArgumentList)} did not finish in time");
        }

        return new ToolResult($"{file} {string.Join(' ', psi.ArgumentList)}", p.ExitCode, await stdout, await stderr);
    }

    public static Task<ToolResult> NbdShAsync(string uri, string script, bool baseAllocation = true)
        => RunAsync("nbdsh", baseAllocation ? ["--base-allocation", "-u", uri, "-c", script] : ["-u", uri, "-c", script]);

    /// <summary>A sparse file of <paramref name="size"/> bytes with pseudo-random data at the given places.</summary>
    public static byte[] CreateSparseFile(string path, long size, params (long Offset, int Length)[] data)
    {
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        f.SetLength(size);
        var rng = new Random(1234);
        foreach (var (offset, length) in data)
        {
            var bytes = new byte[length];
            rng.NextBytes(bytes);
            f.Position = offset;
            f.Write(bytes);
        }

        f.Flush();
        f.Close();
        return System.IO.File.ReadAllBytes(path);
    }
}

/// <summary><c>urldisk serve</c> as a child process, started as users start it (the <c>./urldisk</c> launcher).</summary>
internal sealed class ServeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource<string> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServeProcess(Process process)
    {
        _process = process;
    }

    public string Uri { get; private set; } = "";

    public int Pid => _process.Id;

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public bool HasExited => _process.HasExited;

    public static async Task<ServeProcess> StartAsync(params string[] args)
    {
        var psi = new ProcessStartInfo(await Infrastructure.UrlDiskCli.LauncherAsync())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (k, v) in Infrastructure.TestEnvironment.NoProxy)
        {
            psi.Environment[k] = v;
        }

        psi.ArgumentList.Add("serve");
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var serve = new ServeProcess(p);
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                serve._ready.TrySetException(new InvalidOperationException("urldisk serve ended before it was ready: " + serve.Stderr));
                return;
            }

            lock (serve._stderr)
            {
                serve._stderr.AppendLine(e.Data);
            }

            const string marker = "urldisk: serving ";
            int on = e.Data.LastIndexOf(" on ", StringComparison.Ordinal);
            if (e.Data.StartsWith(marker, StringComparison.Ordinal) && on > 0)
            {
                serve._ready.TrySetResult(e.Data[(on + 4)..]);
            }
        };
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (serve._stderr)
                {
                    serve._stderr.AppendLine("STDOUT: " + e.Data);
                }
            }
        };
        p.Start();
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        try
        {
            serve.Uri = await serve._ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch
        {
            await serve.DisposeAsync();
            throw;
        }

        return serve;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    public const int SigInt = 2;
    public const int SigTerm = 15;

    /// <summary>Sends the signal and waits for the exit code.</summary>
    public async Task<int> StopAsync(int signal = SigTerm)
    {
        if (!_process.HasExited)
        {
            Assert.Equal(0, Kill(_process.Id, signal));
        }

        return await WaitForExitAsync(TimeSpan.FromSeconds(30));
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}

/// <summary>An <see cref="NbdServer"/> hosted in the test process on a Unix socket.</summary>
internal sealed class InProcessNbdServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    public InProcessNbdServer(IBlockDevice device, string socketPath, NbdServerOptions? options = null)
    {
        Server = new NbdServer(device, options ?? new NbdServerOptions { MaxConnections = 0, Persistent = true });
        SocketPath = socketPath;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        _listener.Listen(64);
        _run = Server.RunAsync(_listener, _stop.Token);
    }

    public NbdServer Server { get; }

    public string SocketPath { get; }

    public string Uri => $"nbd+unix:///?socket={SocketPath}";

    public Task RunTask => _run;

    /// <summary>A raw client socket, for tests that speak the protocol by hand.</summary>
    public async Task<Socket> ConnectAsync()
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath));
        return s;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(30));
        _listener.Dispose();
        await Server.Device.DisposeAsync();
    }
}
