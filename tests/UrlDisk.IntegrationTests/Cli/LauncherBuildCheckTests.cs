using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>
/// The launcher's up-to-date check, which the built binary does itself (LauncherBuildCheck.cs): given the list of
/// sources and a stamp, it runs when nothing is newer and hands over to the launcher (URLDISK_REBUILD=1, same
/// arguments) when something is. The real binary runs against a list and stamp in a temp folder, with a stand-in
/// launcher that reports how it was called, so no test rebuilds the CLI.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LauncherBuildCheckTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("urldisk-launcher-check-").FullName;
    private readonly string _source;
    private readonly string _fakeLauncher;
    private readonly string _calls;

    public LauncherBuildCheckTests()
    {
        _source = Path.Combine(_dir, "Source.cs");
        File.WriteAllText(_source, "// a source");
        File.SetLastWriteTimeUtc(_source, DateTime.UtcNow.AddHours(-2));
        File.WriteAllText(Path.Combine(_dir, ".stamp"), "aot\n");
        File.SetLastWriteTimeUtc(Path.Combine(_dir, ".stamp"), DateTime.UtcNow.AddHours(-1));
        WriteList(_source, Path.Combine(_dir, "removed.cs"));
        _calls = Path.Combine(_dir, "calls");
        _fakeLauncher = Path.Combine(_dir, "fake launcher");
        File.WriteAllText(_fakeLauncher, $"#!/bin/sh\n{{ echo \"REBUILD=$URLDISK_REBUILD SOURCES=${{URLDISK_LAUNCHER_SOURCES:-}}\"; for a do echo \"[$a]\"; done; }} >'{_calls}'\n");
        File.SetUnixFileMode(_fakeLauncher, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Sources_older_than_the_stamp_run_the_build_as_it_is()
    {
        var r = await RunBinaryAsync(_fakeLauncher, "--version");
        Assert.Equal(0, r.ExitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+", r.Stdout);
        Assert.False(File.Exists(_calls), "the launcher was called although nothing changed");
    }

    [Fact]
    public async Task A_source_newer_than_the_stamp_hands_over_to_the_launcher_with_the_same_arguments()
    {
        File.SetLastWriteTimeUtc(_source, DateTime.UtcNow);
        var r = await RunBinaryAsync(_fakeLauncher, "info", "a file with spaces", "--output", "json");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(["REBUILD=1 SOURCES=", "[info]", "[a file with spaces]", "[--output]", "[json]"], File.ReadAllLines(_calls));
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public async Task A_missing_list_means_a_rebuild()
    {
        File.Delete(Path.Combine(_dir, ".sources"));
        var r = await RunBinaryAsync(_fakeLauncher, "--version");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("REBUILD=1 SOURCES=", File.ReadAllLines(_calls)[0]);
    }

    [Fact]
    public async Task A_launcher_that_cannot_run_leaves_the_old_build_running_with_a_note()
    {
        File.SetLastWriteTimeUtc(_source, DateTime.UtcNow);
        string missing = Path.Combine(_dir, "no-such-launcher");
        var r = await RunBinaryAsync(missing, "--version");
        Assert.Equal(0, r.ExitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+", r.Stdout);
        Assert.Contains($"{missing} could not be run to rebuild it", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("No such file or directory", r.Stderr, StringComparison.Ordinal);
    }

    private void WriteList(params string[] paths)
        => File.WriteAllBytes(Path.Combine(_dir, ".sources"), System.Text.Encoding.UTF8.GetBytes(string.Concat(paths.Select(p => p + "\0"))));

    /// <summary>The launcher's build (native, or the JIT one through dotnet), started as the launcher starts it.</summary>
    private async Task<ProcessResult> RunBinaryAsync(string launcher, params string[] args)
    {
        await UrlDiskCli.LauncherAsync(); // builds it once
        string build = Path.Combine(UrlDiskCli.RepositoryRoot(), ".build", "urldisk");
        bool native = File.ReadAllText(Path.Combine(build, ".stamp")).Trim() == "aot";
        var environment = new Dictionary<string, string?>
        {
            ["URLDISK_LAUNCHER_SOURCES"] = Path.Combine(_dir, ".sources"),
            ["URLDISK_LAUNCHER"] = launcher,
        };
        return native
            ? await ProcessRunner.RunAsync(Path.Combine(build, "UrlDisk.Cli"), args, null, TestEnvironment.With(environment))
            : await ProcessRunner.RunAsync("dotnet", [Path.Combine(build, "UrlDisk.Cli.dll"), .. args], null, TestEnvironment.With(environment));
    }
}
