namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>
/// Runs the real <c>urldisk</c> command the way users run it: through the repository's <c>./urldisk</c> launcher,
/// which runs the native binary (or, without clang and zlib1g-dev, the JIT build, with a note). The first use
/// in a test run builds it once, outside any test's time limit; every later call finds it up to date.
/// </summary>
public static class UrlDiskCli
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(20);
    private static readonly Lazy<Task<string>> Built = new(BuildAsync);

    /// <summary>The launcher, once the CLI is built (blocks on the first call).</summary>
    public static string Launcher => Built.Value.GetAwaiter().GetResult();

    /// <summary>The launcher, once the CLI is built.</summary>
    public static Task<string> LauncherAsync() => Built.Value;

    public static Task<ProcessResult> RunAsync(params string[] args) => RunAsync(args, null);

    public static async Task<ProcessResult> RunAsync(IEnumerable<string> args, TimeSpan? timeout = null, IReadOnlyDictionary<string, string?>? environment = null, string? workingDirectory = null)
        => await ProcessRunner.RunAsync(await LauncherAsync(), args, timeout, TestEnvironment.With(environment), workingDirectory);

    private static async Task<string> BuildAsync()
    {
        string launcher = Path.Combine(RepositoryRoot(), "urldisk");
        var build = await ProcessRunner.RunAsync(launcher, ["--version"], BuildTimeout, TestEnvironment.NoProxy);
        if (build.ExitCode != 0)
        {
            throw new InvalidOperationException($"./urldisk could not build the CLI: {build}");
        }

        if (build.Stderr.Length > 0)
        {
            // The build's own notes (a JIT fallback says why): shown once, in the test log.
            Console.Error.WriteLine(build.Stderr.TrimEnd());
        }

        return launcher;
    }

    /// <summary>The checkout these tests were built from: the folder above the test binaries that holds the launcher.</summary>
    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "urldisk")) && File.Exists(Path.Combine(dir.FullName, "UrlDisk.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no urldisk launcher above {AppContext.BaseDirectory}: the tests run from a checkout of the repository");
    }
}
