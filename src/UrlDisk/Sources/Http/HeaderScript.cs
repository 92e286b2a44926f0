using System.Diagnostics;

namespace UrlDisk.Sources.Http;

/// <summary>
/// Runs <c>header-script</c> (<c>/bin/sh -c CMD</c>) and reads the headers it prints, one <c>Name: value</c> per line
/// (blank lines ignored). Its output is never shown: it holds tokens.
/// </summary>
internal static class HeaderScript
{
    public static async Task<IReadOnlyList<string>> RunAsync(string command, string protocol, TimeSpan timeout, CancellationToken ct)
    {
        var start = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = false,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        using var process = Process.Start(start) ?? throw new SourceException($"{protocol}: header-script could not be started");
        process.StandardInput.Close();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        string output;
        try
        {
            output = await process.StandardOutput.ReadToEndAsync(limit.Token).ConfigureAwait(false);
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            throw new SourceException($"{protocol}: header-script did not finish within {timeout.TotalSeconds:0.###} s (timeout)");
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        if (process.ExitCode != 0)
        {
            throw new SourceException($"{protocol}: header-script failed with exit status {process.ExitCode}");
        }

        var headers = new List<string>();
        foreach (var raw in output.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0)
            {
                continue;
            }

            if (HttpHeaderLines.Problem(line) is { } problem)
            {
                throw new SourceException($"{protocol}: header-script printed a line that is not a header ({problem})");
            }

            headers.Add(line);
        }

        return headers;
    }
}
