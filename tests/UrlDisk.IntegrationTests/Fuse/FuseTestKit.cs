using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using UrlDisk.IntegrationTests.Nbd;

namespace UrlDisk.IntegrationTests.Fuse;

/// <summary>
/// A test that needs the kernel's FUSE device. Where /dev/fuse is absent (a container without it) the test is
/// skipped with that reason; CI has it.
/// </summary>
public sealed class FuseFactAttribute : FactAttribute
{
    public FuseFactAttribute()
    {
        if (!File.Exists("/dev/fuse"))
        {
            Skip = "/dev/fuse is absent: this machine cannot mount FUSE file systems (load the fuse module, or give the container --device /dev/fuse)";
        }
    }
}

/// <summary>/proc/self/mountinfo, as the tests check it.</summary>
internal static class Mounts
{
    public static bool IsMounted(string path)
        => File.ReadLines("/proc/self/mountinfo").Any(l => l.Split(' ') is { Length: > 4 } f && f[4] == path);

    /// <summary>Removes whatever a failed test left mounted at <paramref name="path"/> (lazily, so it never hangs).</summary>
    public static async Task CleanUpAsync(string path)
    {
        for (int i = 0; i < 4 && IsMounted(path); i++)
        {
            await NbdTool.RunAsync("umount", ["-l", path]);
        }
    }
}

/// <summary><c>urldisk mount</c> as a child process, started as users start it (the <c>./urldisk</c> launcher).</summary>
internal sealed class MountProcess : IAsyncDisposable
{
    private const string Marker = "urldisk: mounted ";
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private MountProcess(Process process, string mountpoint)
    {
        _process = process;
        Mountpoint = mountpoint;
    }

    public string Mountpoint { get; }

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

    /// <summary>Runs <c>urldisk mount ARGS… SPEC MOUNTPOINT</c> and waits until it reports the mount live.</summary>
    public static async Task<MountProcess> StartAsync(string spec, string mountpoint, params string[] args)
    {
        var psi = new ProcessStartInfo(await Infrastructure.UrlDiskCli.LauncherAsync())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (k, v) in Infrastructure.TestEnvironment.NoProxy)
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

        psi.ArgumentList.Add("mount");
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.ArgumentList.Add(spec);
        psi.ArgumentList.Add(mountpoint);
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var mount = new MountProcess(p, mountpoint);
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                mount._ready.TrySetException(new InvalidOperationException("urldisk mount ended before the mount was live: " + mount.Stderr));
                return;
            }

            lock (mount._stderr)
            {
                mount._stderr.AppendLine(e.Data);
            }

            if (e.Data.StartsWith(Marker, StringComparison.Ordinal))
            {
                mount._ready.TrySetResult();
            }
        };
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (mount._stderr)
                {
                    mount._stderr.AppendLine("STDOUT: " + e.Data);
                }
            }
        };
        p.Start();
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        try
        {
            await mount._ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch
        {
            await mount.DisposeAsync();
            throw;
        }

        return mount;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    public const int SigInt = 2;
    public const int SigKill = 9;
    public const int SigTerm = 15;

    /// <summary>Sends the signal and waits for the exit code.</summary>
    public async Task<int> StopAsync(int signal = SigTerm)
    {
        if (!_process.HasExited)
        {
            Assert.Equal(0, Kill(_process.Id, signal));
        }

        return await WaitForExitAsync(TimeSpan.FromSeconds(60));
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>Kills the process if it still runs and removes the mount if it is still there: nothing outlives a test.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        await Mounts.CleanUpAsync(Path.GetFullPath(Mountpoint));
    }
}
