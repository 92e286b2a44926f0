using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>How a failed CLI run must look: exit 1, one clear line on stderr, no stack trace, no secrets.</summary>
internal static class CliAssert
{
    public static string Fails(ProcessResult r, params string[] mustContain)
    {
        Assert.True(r.ExitCode != 0, $"expected a failure but got {r}");
        string err = r.Stderr.Trim();
        Assert.False(string.IsNullOrEmpty(err), $"no error message: {r}");
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", err, StringComparison.Ordinal);
        foreach (var s in mustContain)
        {
            Assert.True(err.Contains(s, StringComparison.OrdinalIgnoreCase), $"the error should mention '{s}': {err}");
        }

        return err;
    }

    public static void NeverShows(ProcessResult r, string secret)
    {
        Assert.DoesNotContain(secret, r.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, r.Stderr, StringComparison.Ordinal);
    }
}
