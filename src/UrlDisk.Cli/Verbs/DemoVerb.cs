using System.CommandLine;
using System.Diagnostics;
using System.Security.Cryptography;
using UrlDisk.Cli.Demo;

namespace UrlDisk.Cli.Verbs;

/// <summary>
/// <c>urldisk demo</c>: a self-contained tour that needs no network. It serves a generated disk image from an
/// HTTP server inside this process and runs real urldisk commands against it.
/// </summary>
internal static class DemoVerb
{
    public static Command Create()
    {
        var keep = new Option<string?>("--keep") { Description = "Keep the demo files in this directory" };
        var cmd = new Command("demo", "Run a self-contained demo: a local HTTP server, info, convert with progress, statistics, a qcow2 overlay with copy-on-read, the NBD server") { keep };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, async ct =>
        {
            string dir = r.GetValue(keep) ?? Path.Combine(Path.GetTempPath(), "urldisk-demo-" + Environment.ProcessId);
            Directory.CreateDirectory(dir);
            try
            {
                return await RunAsync(dir, ct).ConfigureAwait(false);
            }
            finally
            {
                if (r.GetValue(keep) is null)
                {
                    Directory.Delete(dir, recursive: true);
                }
            }
        }));
        return cmd;
    }

    private static async Task<int> RunAsync(string dir, CancellationToken ct)
    {
        string www = Path.Combine(dir, "www");
        Directory.CreateDirectory(www);
        string image = Path.Combine(www, "disk.img");
        Say("Making a 64 MiB demo disk (MBR, data stripes, zero runs) …");
        DemoImage.Write(image, 64 << 20);

        await using var server = await DemoServer.StartAsync(www, ct).ConfigureAwait(false);
        string url = new Uri(server.BaseUrl, "disk.img").ToString();
        Say($"Serving it at {url} from an HTTP server inside this process (127.0.0.1 only).");

        int failures = 0;
        failures += await RunCliAsync(["info", url], ct).ConfigureAwait(false);
        failures += await RunCliAsync(["info", "--output", "json", $"json:{{\"file.driver\":\"http\",\"file.url\":\"{url}\",\"file.readahead\":\"64k\"}}"], ct).ConfigureAwait(false);

        string output = Path.Combine(dir, "disk.raw");
        failures += await RunCliAsync(["--stats", "convert", "-p", "-O", "raw", url, output], ct).ConfigureAwait(false);
        if (File.Exists(output))
        {
            bool same = Hash(output).SequenceEqual(Hash(image));
            long allocated = AllocatedBytes(output);
            Say($"disk.raw is {(same ? "byte for byte the same as" : "DIFFERENT from")} the served image; "
                + (allocated >= 0 ? $"it is sparse: {allocated >> 20} MiB of 64 MiB allocated (zero runs were not written)." : ""));
            failures += same ? 0 : 1;
        }

        failures += await RunCliAsync(["--stats", "convert", "--image-opts", "-O", "raw", $"driver=raw,file.driver=http,file.url={url},file.readahead=1M", output], ct).ConfigureAwait(false);

        Say("A local qcow2 overlay whose backing file is the URL; copy-on-read keeps what was read:");
        string overlay = Path.Combine(dir, "overlay.qcow2");
        failures += await RunCliAsync(["create", "-f", "qcow2", "-F", "raw", "-b", url, overlay], ct).ConfigureAwait(false);
        failures += await RunCliAsync(["--stats", "convert", "--copy-on-read", "-O", "raw", overlay, "/dev/null"], ct).ConfigureAwait(false);
        Say("A second pass over the warmed overlay reads nothing from the server (0 requests):");
        failures += await RunCliAsync(["--stats", "convert", "-O", "raw", overlay, "/dev/null"], ct).ConfigureAwait(false);
        failures += await RunCliAsync(["check", overlay], ct).ConfigureAwait(false);
        failures += await RunCliAsync(["info", "--backing-chain", overlay], ct).ConfigureAwait(false);

        Say("Serving the overlay over NBD, so a VM (or any NBD client) can use it:");
        failures += await ServeBrieflyAsync(dir, overlay, ct).ConfigureAwait(false);

        Say("Errors are one clear line, and credentials never appear in them:");
        await RunCliAsync(["info", new Uri(server.BaseUrl, "missing.img").ToString().Replace("http://", "http://user:secret@", StringComparison.Ordinal)], ct).ConfigureAwait(false);
        await RunCliAsync(["info", $"json:{{\"file.driver\":\"http\",\"file.url\":\"{url}\",\"file.readahead\":\"1000\"}}"], ct).ConfigureAwait(false);

        Say(failures == 0 ? "Demo finished: every step worked." : $"Demo finished with {failures} failing step(s).");
        return failures == 0 ? 0 : 1;
    }

    private static void Say(string text)
    {
        Console.Out.WriteLine();
        Console.Out.WriteLine("# " + text);
    }

    /// <summary>Runs this CLI as a child process, so the demo shows exactly what a user would see.</summary>
    private static async Task<int> RunCliAsync(string[] args, CancellationToken ct)
    {
        Console.Out.WriteLine("$ urldisk " + string.Join(' ', args.Select(Quote)));
        Console.Out.Flush();
        var psi = SelfStartInfo(args);
        using var p = Process.Start(psi)!;
        await p.WaitForExitAsync(ct).ConfigureAwait(false);
        return p.ExitCode == 0 ? 0 : 1;
    }

    /// <summary>Starts <c>urldisk serve</c>, shows how QEMU would use it, asks it with nbdinfo when installed, then stops it with SIGTERM.</summary>
    private static async Task<int> ServeBrieflyAsync(string dir, string image, CancellationToken ct)
    {
        string socket = Path.Combine(dir, "demo.sock");
        string[] args = ["serve", "--socket", socket, "--persistent", "--shared", "0", image];
        Console.Out.WriteLine("$ urldisk " + string.Join(' ', args.Select(Quote)) + " &");
        Console.Out.Flush();
        var psi = SelfStartInfo(args);
        psi.RedirectStandardError = true;
        using var server = Process.Start(psi)!;
        string? ready = null;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            while (ready is null && await server.StandardError.ReadLineAsync(timeout.Token).ConfigureAwait(false) is { } line)
            {
                Console.Error.WriteLine(line);
                if (line.Contains("serving", StringComparison.Ordinal))
                {
                    ready = line;
                }
            }
        }

        if (ready is null)
        {
            Console.Out.WriteLine("serve did not start");
            return 1;
        }

        string uri = $"nbd+unix:///?socket={socket}";
        Console.Out.WriteLine("# A VM would boot from it with:");
        Console.Out.WriteLine($"#   qemu-system-x86_64 -m 1G -drive file={uri},format=raw");
        int failures = 0;
        if (OnPath("nbdinfo"))
        {
            Console.Out.WriteLine($"$ nbdinfo {uri}");
            Console.Out.Flush();
            using var info = Process.Start(new ProcessStartInfo("nbdinfo", [uri]) { UseShellExecute = false })!;
            await info.WaitForExitAsync(ct).ConfigureAwait(false);
            failures += info.ExitCode == 0 ? 0 : 1;
        }

        // SIGTERM: the server stops accepting, finishes what is in flight, flushes and exits 0.
        using (var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!)
        {
            await kill.WaitForExitAsync(ct).ConfigureAwait(false);
        }

        _ = server.StandardError.ReadToEndAsync(ct);
        await server.WaitForExitAsync(ct).ConfigureAwait(false);
        Console.Out.WriteLine($"# serve stopped on SIGTERM with exit code {server.ExitCode}");
        return failures + (server.ExitCode == 0 ? 0 : 1);
    }

    private static bool OnPath(string tool)
        => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Any(d => File.Exists(Path.Combine(d, tool)));

    /// <summary>
    /// This program again: the native binary, the .NET tool's shim or an apphost run themselves; under the
    /// <c>dotnet</c> host the CLI's dll (next to this code) is the first argument.
    /// </summary>
    private static ProcessStartInfo SelfStartInfo(string[] args)
    {
        string self = Environment.ProcessPath ?? "dotnet";
        var psi = new ProcessStartInfo(self) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self).Equals("dotnet", StringComparison.Ordinal))
        {
            psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "UrlDisk.Cli.dll"));
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return psi;
    }

    private static string Quote(string a) => a.Any(c => c is ' ' or '"' or '{' or '$' or ',') ? $"'{a}'" : a;

    private static byte[] Hash(string path)
    {
        using var f = File.OpenRead(path);
        return SHA256.HashData(f);
    }

    /// <summary>Allocated size from <c>du</c>-style block count; -1 when unknown.</summary>
    private static long AllocatedBytes(string path)
    {
        try
        {
            var psi = new ProcessStartInfo("stat", ["-c", "%b %B", path]) { RedirectStandardOutput = true, UseShellExecute = false };
            using var p = Process.Start(psi)!;
            var parts = p.StandardOutput.ReadToEnd().Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            p.WaitForExit();
            return parts.Length == 2 ? long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture) * long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) : -1;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return -1;
        }
    }
}
