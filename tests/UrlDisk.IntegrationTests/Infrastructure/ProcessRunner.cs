using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>What a finished tool printed and returned.</summary>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>
/// Runs real tools (nginx, qemu-img, openssl, the CLI) with a timeout. A tool that is not installed
/// fails the test with a message saying how to install it: tests never skip.
/// </summary>
public static class ProcessRunner
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(2);

    /// <summary>Runs <paramref name="fileName"/> to completion; on timeout kills its whole process tree and fails.</summary>
    public static async Task<ProcessResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string?>? environment = null,
        string? workingDirectory = null,
        string? stdin = null,
        CancellationToken cancellationToken = default)
    {
        await using var process = Start(fileName, arguments, environment, workingDirectory, redirectStdin: stdin is not null);
        if (stdin is not null)
        {
            await process.Process.StandardInput.WriteAsync(stdin);
            process.Process.StandardInput.Close();
        }

        var limit = timeout ?? DefaultTimeout;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(limit);
        try
        {
            await process.Process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            process.Kill();
            throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} did not finish within {limit.TotalSeconds:0} s; stdout so far:\n{process.Stdout}\nstderr so far:\n{process.Stderr}");
        }

        return await process.ResultAsync();
    }

    /// <summary>Starts a long-running tool (a server); dispose kills it and its children.</summary>
    public static RunningProcess Start(
        string fileName,
        IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string?>? environment = null,
        string? workingDirectory = null,
        bool redirectStdin = false)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectStdin,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        if (environment is not null)
        {
            foreach (var (k, v) in environment)
            {
                if (v is null)
                {
                    psi.Environment.Remove(k);
                }
                else
                {
                    psi.Environment[k] = v;
                }
            }
        }

        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {fileName}");
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException(
                $"could not start '{fileName}' ({e.Message}); the integration tests need it installed: run scripts/test.sh, which installs the Debian packages they use", e);
        }

        return new RunningProcess(process);
    }

    /// <summary>Where a tool is on PATH (or in the sbin directories root has), or a failure naming the package to install.</summary>
    public static string RequireTool(string name, string debianPackage)
    {
        string[] dirs = [.. (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries), "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
        foreach (var d in dirs)
        {
            string p = Path.Combine(d, name);
            if (File.Exists(p))
            {
                return p;
            }
        }

        throw new InvalidOperationException($"'{name}' is not installed; install the Debian package {debianPackage} (scripts/test.sh does it)");
    }
}

/// <summary>A started tool: collects its output as it runs; dispose kills the whole tree.</summary>
public sealed class RunningProcess : IAsyncDisposable
{
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Task _stdoutPump;
    private readonly Task _stderrPump;
    private readonly DateTime _started = DateTime.UtcNow;

    internal RunningProcess(Process process)
    {
        Process = process;
        _stdoutPump = Pump(process.StandardOutput, _stdout);
        _stderrPump = Pump(process.StandardError, _stderr);
    }

    public Process Process { get; }

    public bool HasExited => Process.HasExited;

    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

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

    public void Kill()
    {
        try
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    /// <summary>Waits for the output to be drained after the process exited.</summary>
    public async Task<ProcessResult> ResultAsync()
    {
        await Process.WaitForExitAsync();
        await Task.WhenAll(_stdoutPump, _stderrPump);
        return new ProcessResult(Process.ExitCode, Stdout, Stderr, DateTime.UtcNow - _started);
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await Process.WaitForExitAsync(cts.Token);
            await Task.WhenAll(_stdoutPump, _stderrPump).WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
        }

        Process.Dispose();
    }

    private static async Task Pump(StreamReader reader, StringBuilder sink)
    {
        var buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer)) > 0)
        {
            lock (sink)
            {
                sink.Append(buffer, 0, n);
            }
        }
    }
}
