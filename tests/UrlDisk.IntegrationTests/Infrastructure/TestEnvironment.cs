namespace UrlDisk.IntegrationTests.Infrastructure;

/// <summary>Environment for child processes: no proxy from the outside may see requests meant for 127.0.0.1.</summary>
public static class TestEnvironment
{
    public static IReadOnlyDictionary<string, string?> NoProxy { get; } = new Dictionary<string, string?>
    {
        ["http_proxy"] = null,
        ["https_proxy"] = null,
        ["all_proxy"] = null,
        ["HTTP_PROXY"] = null,
        ["HTTPS_PROXY"] = null,
        ["ALL_PROXY"] = null,
        ["no_proxy"] = "127.0.0.1,localhost",
        ["NO_PROXY"] = "127.0.0.1,localhost",
    };

    /// <summary><see cref="NoProxy"/> plus <paramref name="extra"/>.</summary>
    public static IReadOnlyDictionary<string, string?> With(IReadOnlyDictionary<string, string?>? extra)
    {
        var d = new Dictionary<string, string?>(NoProxy);
        if (extra is not null)
        {
            foreach (var (k, v) in extra)
            {
                d[k] = v;
            }
        }

        return d;
    }
}
