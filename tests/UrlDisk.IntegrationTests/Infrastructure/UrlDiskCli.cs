namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>Runs the real <c>urldisk</c> command (UrlDisk.Cli.dll copied next to the tests) as a child process.</summary>
public static class UrlDiskCli
{
    public static string DllPath { get; } = Path.Combine(AppContext.BaseDirectory, "UrlDisk.Cli.dll");

    /// <summary>The dotnet host the tests run under (the SDK sets DOTNET_HOST_PATH), so the CLI runs on the same runtime.</summary>
    public static string DotnetHost { get; } = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)
        ? host
        : "dotnet";

    public static Task<ProcessResult> RunAsync(params string[] args) => RunAsync(args, null);

    public static Task<ProcessResult> RunAsync(IEnumerable<string> args, TimeSpan? timeout = null, IReadOnlyDictionary<string, string?>? environment = null, string? workingDirectory = null)
    {
        if (!File.Exists(DllPath))
        {
            throw new InvalidOperationException($"{DllPath} is missing: the integration test project must reference src/UrlDisk.Cli");
        }

        return ProcessRunner.RunAsync(DotnetHost, [DllPath, .. args], timeout, TestEnvironment.With(environment), workingDirectory);
    }
}
