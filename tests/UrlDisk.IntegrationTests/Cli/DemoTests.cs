using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>
/// <c>urldisk demo</c>, the README's first command, end to end as a user runs it: its in-process HTTP server
/// (HEAD, ranges, validators), every verb it runs as a child of itself, <c>serve</c> with nbdinfo, and the error steps.
/// </summary>
public class DemoTests
{
    [Fact]
    public async Task Demo_runs_every_step()
    {
        using var dir = new TempDir("urldisk-demo");
        var r = await UrlDiskCli.RunAsync(["demo", "--keep", dir.Path], TimeSpan.FromMinutes(5));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("Demo finished: every step worked.", r.Stdout);
        Assert.Contains("disk.raw is byte for byte the same as the served image", r.Stdout);
        Assert.Contains("serve stopped on SIGTERM with exit code 0", r.Stdout);
        Assert.True(File.Exists(Path.Combine(dir.Path, "overlay.qcow2")), r.ToString());

        // The error steps: a missing file is named with the server's answer, and its credentials are not.
        Assert.Contains("404 Not Found", r.Stderr);
        Assert.DoesNotContain("secret", r.Stderr);
    }
}
