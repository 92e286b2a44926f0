using System.Diagnostics;
using UrlDisk.Cli.Fuse;

namespace UrlDisk.Cli;

/// <summary>
/// <c>mount --daemon</c> and <c>serve --fork</c>: the command starts itself again without the flag, relays the copy's
/// messages until it says it is ready (then returns 0 and leaves it running) or ends (then returns its exit code).
/// .NET cannot fork, so the copy is a new process that detaches itself once ready.
/// </summary>
internal static class BackgroundStart
{
    /// <summary>Runs the command line again without <paramref name="flag"/>, with <paramref name="childVariable"/> set.</summary>
    public static async Task<int> RunAsync(string flag, string childVariable, string readyMarker, string what, CancellationToken ct)
    {
        string[] all = Environment.GetCommandLineArgs();
        string process = Environment.ProcessPath ?? all[0];
        var psi = new ProcessStartInfo(process) { RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(process) == "dotnet")
        {
            psi.ArgumentList.Add(all[0]); // the JIT build: dotnet UrlDisk.Cli.dll
        }

        foreach (string a in all.Skip(1))
        {
            if (a != flag)
            {
                psi.ArgumentList.Add(a);
            }
        }

        psi.Environment[childVariable] = "1";
        using var child = Process.Start(psi) ?? throw new IOException($"could not start the background {what} process");
        child.StandardInput.Close();
        while (await child.StandardError.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            Console.Error.WriteLine(line);
            if (line.StartsWith(readyMarker, StringComparison.Ordinal))
            {
                Console.Error.WriteLine($"urldisk: serving the {what} in the background (pid {child.Id})");
                return 0;
            }
        }

        await child.WaitForExitAsync(ct).ConfigureAwait(false);
        return child.ExitCode == 0 ? 1 : child.ExitCode;
    }

    /// <summary>True in the copy that <see cref="RunAsync"/> started.</summary>
    public static bool IsChild(string childVariable) => Environment.GetEnvironmentVariable(childVariable) is not null;

    /// <summary>The background process leaves the parent's session and stops writing to the parent's pipes.</summary>
    public static void Detach()
    {
        FuseNative.SetSid();
        int devNull = FuseNative.Open("/dev/null", FuseNative.ORdWr);
        if (devNull >= 0)
        {
            FuseNative.Dup2(devNull, 0);
            FuseNative.Dup2(devNull, 1);
            FuseNative.Dup2(devNull, 2);
            FuseNative.Close(devNull);
        }
    }
}
