using System.CommandLine;
using System.Globalization;
using UrlDisk.Diagnostics;
using UrlDisk.Layers.DiskCache;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary>
/// <c>urldisk cache list [DIR]</c> and <c>urldisk cache clear [DIR]</c>: what the disk cache holds, and emptying it.
/// DIR defaults to <c>--cache-dir</c>, then <c>URLDISK_CACHE_DIR</c>.
/// </summary>
internal static class CacheVerb
{
    public static Command Create()
    {
        var cmd = new Command("cache", "Show or empty the disk cache (cache-dir, --cache-dir, URLDISK_CACHE_DIR)");
        cmd.Subcommands.Add(Sub("list", "List the cached files: URL, size, bytes present, last used", (dir, _) =>
        {
            var entries = DiskCacheStore.List(dir);
            long total = 0;
            foreach (var e in entries.OrderByDescending(e => e.LastUsed))
            {
                string lastUsed = e.LastUsed.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);
                Console.WriteLine(e.Header is null
                    ? $"{e.Name}  (damaged index: discarded on next use)  last used {lastUsed}"
                    : $"{Redact.Url(e.Header.Location)}  size {e.Header.Length}  present {e.PresentBytes} ({Percent(e.PresentBytes, e.Header.Length)})  last used {lastUsed}");
                total += e.PresentBytes;
            }

            Console.WriteLine($"{entries.Count} {(entries.Count == 1 ? "entry" : "entries")}, {total} bytes present in {dir}");
            return 0;
        }));
        cmd.Subcommands.Add(Sub("clear", "Delete every cached file (safe while other processes use the cache: they keep reading their own copies)", (dir, _) =>
        {
            var (n, bytes) = DiskCacheStore.Clear(dir, UrlDiskLogging.Create("UrlDisk.DiskCache"));
            Console.WriteLine($"removed {n} {(n == 1 ? "entry" : "entries")}, {bytes} bytes, from {dir}");
            string profiles = Path.Combine(dir, ServeVerb.ProfilesFolder);
            if (Directory.Exists(profiles))
            {
                // Boot profiles serve records beside the cache (one per image version) go with it.
                int count = 0;
                foreach (string file in Directory.EnumerateFiles(profiles, "*.profile"))
                {
                    File.Delete(file);
                    count++;
                }

                if (count > 0)
                {
                    Console.WriteLine($"removed {count} boot {(count == 1 ? "profile" : "profiles")} from {profiles}");
                }
            }

            return 0;
        }));
        return cmd;
    }

    private static Command Sub(string name, string description, Func<string, CancellationToken, int> body)
    {
        var dir = new Argument<string?>("DIR") { Description = "The cache directory (default: --cache-dir, then URLDISK_CACHE_DIR)", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command(name, description) { dir };
        cmd.SetAction((r, ct) => CliCommon.RunAsync(r, ct, ct =>
        {
            string directory = r.GetValue(dir) is { Length: > 0 } d ? d : CliCommon.CacheDirectory(r)
                ?? throw new OptionException($"cache {name}: no cache directory; give DIR, --cache-dir DIR or URLDISK_CACHE_DIR");
            return Task.FromResult(body(Path.GetFullPath(directory), ct));
        }));
        return cmd;
    }

    private static string Percent(long part, long whole) => whole == 0 ? "100%" : (100.0 * part / whole).ToString("0.#", CultureInfo.InvariantCulture) + "%";
}
