using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Ftp;

public sealed class VsftpdTests(Vsftpd server) : IClassFixture<Vsftpd>
{
    /// <summary>Opens json:{"file":{"driver":…,"url":…, options…}} as raw.</summary>
    internal static ValueTask<IBlockDevice> Open(string driver, string url, params (string Key, string Value)[] options)
    {
        var file = new Dictionary<string, string> { ["driver"] = driver, ["url"] = url };
        foreach (var (k, v) in options)
        {
            file[k] = v;
        }

        return ImageOpener.OpenAsync("json:" + System.Text.Json.JsonSerializer.Serialize(new { file }), "raw");
    }

    private string UserInfo => Uri.EscapeDataString(server.User) + ":" + Uri.EscapeDataString(server.Password);

    [Fact]
    public async Task Anonymous_plain_ftp_parallel_random_reads_match()
    {
        await using var dev = await ImageOpener.OpenAsync($"ftp://127.0.0.1:{server.Port}/disk.img");
        Assert.Equal("raw", dev.Info.Driver);
        Assert.Equal("ftp", dev.Info.Child!.Info.Driver);
        await RandomReads.AssertMatchesAsync(dev, server.Image);
        await RandomReads.AssertWholeAsync(dev, server.Image);
    }

    [Fact]
    public async Task Explicit_tls_local_user_with_cafile_reuses_the_tls_session_on_data_connections()
    {
        await using var dev = await Open("ftp", $"ftp://{UserInfo}@127.0.0.1:{server.Port}/private.img", ("tls", "explicit"), ("cafile", $"{server.CertFile}"), ("connections", "6"));
        Assert.StartsWith("explicit", (string)dev.Info.Child!.Info.Details["tls"]!, StringComparison.Ordinal);
        await RandomReads.AssertMatchesAsync(dev, server.Image, seed: 2);
    }

    [Fact]
    public async Task Explicit_tls_by_host_name_with_username_and_password_file()
    {
        string pwFile = Path.Combine(server.Root, "pw-" + Guid.NewGuid().ToString("n"));
        await File.WriteAllTextAsync(pwFile, server.Password + "\n");
        await using var dev = await Open("ftp", $"ftp://localhost:{server.Port}/private.img", ("tls", "explicit"), ("cafile", $"{server.CertFile}"), ("username", $"{server.User}"), ("password-file", $"{pwFile}"), ("readahead", "0"));
        await RandomReads.AssertMatchesAsync(dev, server.Image, reads: 40, seed: 3);
    }

    [Fact]
    public async Task Implicit_tls_ftps_parallel_random_reads_match()
    {
        await using var dev = await Open("ftps", $"ftps://127.0.0.1:{server.ImplicitPort}/disk.img", ("cafile", $"{server.CertFile}"));
        Assert.StartsWith("implicit", (string)dev.Info.Child!.Info.Details["tls"]!, StringComparison.Ordinal);
        await RandomReads.AssertMatchesAsync(dev, server.Image, seed: 4);
    }

    [Fact]
    public async Task Certificate_is_verified_by_default()
    {
        var e = await Assert.ThrowsAsync<SourceException>(async () => await ImageOpener.OpenAsync($"ftps://127.0.0.1:{server.ImplicitPort}/disk.img"));
        Assert.Contains("TLS handshake failed", e.Message, StringComparison.Ordinal);

        await using var dev = await Open("ftps", $"ftps://127.0.0.1:{server.ImplicitPort}/disk.img", ("sslverify", "off"));
        Assert.Equal(server.Image.Length, dev.Length);
    }

    [Fact]
    public async Task Wrong_password_names_the_530_reply_but_not_the_password()
    {
        string bad = "Wr0ng-" + Guid.NewGuid().ToString("n");
        var e = await Assert.ThrowsAsync<SourceException>(async () =>
            await ImageOpener.OpenAsync($"ftp://{Uri.EscapeDataString(server.User)}:{bad}@127.0.0.1:{server.Port}/private.img"));
        Assert.Contains("530", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(bad, e.ToString(), StringComparison.Ordinal);
        Assert.False(e.IsTransient);
    }

    [Fact]
    public async Task Missing_file_names_the_550_reply()
    {
        var e = await Assert.ThrowsAsync<SourceException>(async () => await ImageOpener.OpenAsync($"ftp://127.0.0.1:{server.Port}/no-such.img"));
        Assert.Contains("550", e.Message, StringComparison.Ordinal);
        Assert.Contains("no-such.img", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_changed_modification_time_on_a_new_control_connection_is_reported()
    {
        string name = "changing-" + Guid.NewGuid().ToString("n") + ".img";
        string path = Path.Combine(server.AnonRoot, name);
        await File.WriteAllBytesAsync(path, server.Image.AsMemory(0, 1 << 20));
        File.SetLastWriteTimeUtc(path, new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        await using var dev = await Open("ftp", $"ftp://127.0.0.1:{server.Port}/{name}", ("connections", "2"), ("readahead", "0"));
        File.SetLastWriteTimeUtc(path, new DateTime(2021, 1, 1, 0, 0, 0, DateTimeKind.Utc));

        // Two reads at once: one takes the open connection, the other needs a new one, which sees the new MDTM.
        var reads = new[] { dev.ReadAsync(0, new byte[4096]).AsTask(), dev.ReadAsync(8192, new byte[4096]).AsTask() };
        var e = await Assert.ThrowsAsync<RemoteFileChangedException>(() => Task.WhenAll(reads));
        Assert.Contains("MDTM", e.Message, StringComparison.Ordinal);
    }
}
