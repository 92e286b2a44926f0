using System.Security.Cryptography;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.Layers.Prefetch;

namespace UrlDisk.IntegrationTests.Nbd;

/// <summary>
/// <c>urldisk serve --record-profile</c> then <c>--prefetch-profile</c> of an image behind nginx, read by nbdsh (libnbd)
/// with the same scripted pattern both times: the second serve fetches the recorded set in a few large requests and
/// the client's reads cause no request of their own.
/// </summary>
public class ServeBootProfileTests
{
    private const int MiB = 1 << 20;

    /// <summary>Offsets and sizes a "boot" reads: small sequential reads, reads with small gaps, large reads, a repeat.</summary>
    private static readonly (long Offset, int Length)[] Pattern =
    [
        .. Enumerable.Range(0, 128).Select(i => ((long)MiB + (i * 4096L), 4096)),
        .. Enumerable.Range(0, 64).Select(i => ((20L * MiB) + (i * 4096L), 2048)),
        .. Enumerable.Range(0, 24).Select(i => ((9L * MiB) + (i * 256L * 1024), 256 * 1024)),
        (30L * MiB, 100 * 1024),
        (MiB + 4096, 4096),
    ];

    private static string Script => $$"""
        import hashlib
        s = hashlib.sha256()
        for off, n in [{{string.Join(", ", Pattern.Select(p => $"({p.Offset}, {p.Length})"))}}]:
            s.update(h.pread(n, off))
        print(s.hexdigest())
        """;

    private static string Expected(byte[] content)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (offset, length) in Pattern)
        {
            sha.AppendData(content, (int)offset, length);
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private static async Task<string> ReadPatternAsync(string uri)
        => (await NbdTool.NbdShAsync(uri, Script, baseAllocation: false)).EnsureSuccess().Stdout.Trim();

    [Fact]
    public async Task A_recorded_profile_is_prefetched_in_large_requests_and_the_same_reads_then_make_none()
    {
        await using var nginx = await NginxServer.StartAsync();
        var content = ImageFactory.WithZeroRegions(32 * MiB, seed: 11);
        string path = nginx.Put("boot/disk.raw", content);
        string url = nginx.HttpUrl(path);
        using var dir = new NbdTempDir();
        string profile = dir.File("disk.profile");

        // First boot: record.
        await using (var serve = await ServeProcess.StartAsync("--socket", dir.File("s1"), "--record-profile", profile, url))
        {
            Assert.Equal(Expected(content), await ReadPatternAsync(serve.Uri));
            Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains($"recorded boot profile {profile}", serve.Stderr);
        }

        Assert.True(BootProfile.TryRead(File.ReadAllBytes(profile), out var recorded, out string error, out _), error);
        var plan = PrefetchPlan.Build(recorded!.Ranges);
        int recordRequests = (await nginx.SettledRequestsAsync(path)).Count;

        // Second boot: prefetch. Wait until every piece of the plan was asked for, then read the same pattern.
        int before = nginx.Requests(path).Count;
        await using (var serve = await ServeProcess.StartAsync("--socket", dir.File("s2"), "--prefetch-profile", profile, url))
        {
            for (int i = 0; i < 600 && nginx.Requests(path).Skip(before).Count(r => r.Range is not null) < plan.Count; i++)
            {
                await Task.Delay(100);
            }

            var prefetched = (await nginx.SettledRequestsAsync(path)).Skip(before).Where(r => r.Range is not null).ToList();
            Assert.Equal(Expected(content), await ReadPatternAsync(serve.Uri));
            Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(60)));

            var ranged = (await nginx.SettledRequestsAsync(path)).Skip(before).Where(r => r.Range is not null).ToList();
            Assert.Equal(prefetched.Count, ranged.Count);
            var asked = ranged.Select(r => r.ParsedRange!.Value).OrderBy(r => r.First).ToList();
            var pieces = plan.Select(p => (First: p.Offset, Last: p.End - 1)).OrderBy(p => p.First).ToList();
            Assert.Equal(pieces, asked);
            Assert.True(ranged.Count < recordRequests / 2, $"{ranged.Count} prefetch requests against {recordRequests} while recording");
            Assert.All(plan, p => Assert.True(p.Length >= 64 * 1024, $"piece {p} is small"));
            Assert.Contains("0 passed through", serve.Stderr);
        }
    }

    [Fact]
    public async Task A_profile_of_another_image_version_is_ignored_with_a_note_and_a_damaged_one_is_refused()
    {
        await using var nginx = await NginxServer.StartAsync();
        var content = ImageFactory.WithZeroRegions(32 * MiB, seed: 12);
        string path = nginx.Put("boot/disk.raw", content);
        string url = nginx.HttpUrl(path);
        using var dir = new NbdTempDir();
        string profile = dir.File("disk.profile");
        await using (var serve = await ServeProcess.StartAsync("--socket", dir.File("s1"), "--record-profile", profile, url))
        {
            await ReadPatternAsync(serve.Uri);
            Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        // The image changes (new bytes, new Last-Modified and ETag): the profile no longer applies.
        var changed = ImageFactory.WithZeroRegions(32 * MiB, seed: 13);
        nginx.Put("boot/disk.raw", changed);
        File.SetLastWriteTimeUtc(Path.Combine(nginx.DocRoot, "boot/disk.raw"), DateTime.UtcNow.AddHours(1));
        await using (var serve = await ServeProcess.StartAsync("--socket", dir.File("s2"), "--prefetch-profile", profile, url))
        {
            Assert.Equal(Expected(changed), await ReadPatternAsync(serve.Uri));
            Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains($"urldisk: boot profile '{profile}' ignored: it was recorded on another version of the image", serve.Stderr);
        }

        // A truncated profile named by hand is an error naming it; nothing is served.
        File.WriteAllBytes(profile, File.ReadAllBytes(profile)[..70]);
        var result = await UrlDiskCli.RunAsync(["serve", "--socket", dir.File("s3"), "--prefetch-profile", profile, url]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"--prefetch-profile: boot profile '{profile}' is not usable: truncated or damaged", result.Stderr);
        Assert.False(File.Exists(dir.File("s3")));

        // So is a profile that does not exist, before anything listens.
        result = await UrlDiskCli.RunAsync(["serve", "--socket", dir.File("s4"), "--prefetch-profile", dir.File("none.profile"), url]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("does not exist", result.Stderr);
    }

    [Fact]
    public async Task With_a_cache_dir_the_first_serve_records_and_the_next_prefetches_and_cache_clear_removes_the_profile()
    {
        await using var nginx = await NginxServer.StartAsync();
        var content = ImageFactory.WithZeroRegions(32 * MiB, seed: 14);
        string path = nginx.Put("boot/disk.raw", content);
        string url = nginx.HttpUrl(path);
        using var dir = new NbdTempDir();
        string cache = dir.File("cache");
        string profiles = Path.Combine(cache, "profiles");

        await using (var serve = await ServeProcess.StartAsync("--cache-dir", cache, "--socket", dir.File("s1"), url))
        {
            Assert.Equal(Expected(content), await ReadPatternAsync(serve.Uri));
            Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("recorded boot profile " + profiles, serve.Stderr);
        }

        string profile = Assert.Single(Directory.GetFiles(profiles, "*.profile"));
        Assert.True(BootProfile.TryRead(File.ReadAllBytes(profile), out _, out string error, out _), error);

        await using (var serve = await ServeProcess.StartAsync("--cache-dir", cache, "--socket", dir.File("s2"), url))
        {
            Assert.Equal(Expected(content), await ReadPatternAsync(serve.Uri));
            Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("prefetch: ", serve.Stderr);
            Assert.Contains("0 passed through", serve.Stderr);
        }

        var cleared = await UrlDiskCli.RunAsync(["cache", "clear", cache]);
        Assert.Equal(0, cleared.ExitCode);
        Assert.Contains("removed 1 boot profile from " + profiles, cleared.Stdout);
        Assert.Empty(Directory.GetFiles(profiles, "*.profile"));
    }
}
