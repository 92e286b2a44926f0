using System.Diagnostics;

namespace UrlDisk.Fuzz;

/// <summary>
/// Coverage-guided runs: copies this program's folder, instruments the copy of UrlDisk.dll with SharpFuzz, and runs
/// the copy, which then finds its coverage map attached (<see cref="CoverageMap.TryAttach"/>).
/// </summary>
public static class Instrumentation
{
    public const string Flag = "--instrumented";

    public static int RunInstrumentedCopy(string[] args)
    {
        string source = AppContext.BaseDirectory;
        string copy = Path.Combine(Path.GetTempPath(), "urldisk-fuzz-" + Environment.ProcessId);
        try
        {
            Directory.CreateDirectory(copy);
            foreach (string file in Directory.EnumerateFiles(source))
            {
                File.Copy(file, Path.Combine(copy, Path.GetFileName(file)), overwrite: true);
            }

            SharpFuzz.Fuzzer.Instrument(Path.Combine(copy, "UrlDisk.dll"), _ => true, SharpFuzz.Options.Value).ToList();
            var start = new ProcessStartInfo("dotnet") { UseShellExecute = false };
            start.ArgumentList.Add(Path.Combine(copy, "UrlDisk.Fuzz.dll"));
            foreach (string a in args)
            {
                start.ArgumentList.Add(a);
            }

            start.ArgumentList.Add(Flag);
            using var child = Process.Start(start)!;
            child.WaitForExit();
            return child.ExitCode;
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }
}
