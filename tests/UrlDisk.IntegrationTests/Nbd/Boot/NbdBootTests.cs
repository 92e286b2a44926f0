using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Nbd.Boot;

/// <summary>
/// A real machine boots from <c>urldisk serve</c>: QEMU (TCG) reads a GRUB ISO as a CD-ROM over NBD, GRUB loads
/// Debian's cloud kernel and a busybox initramfs, whose /init prints a marker on the serial port and powers off.
/// </summary>
public class NbdBootTests
{
    private const string Marker = "URLDISK-NBD-BOOT-OK";

    [Fact]
    public async Task Qemu_boots_an_iso_from_a_local_file_served_over_nbd()
    {
        string iso = await BuildIsoAsync();
        await BootAsync(iso);
    }

    [Fact]
    public async Task Qemu_boots_an_iso_that_urldisk_reads_from_nginx_over_http()
    {
        string iso = await BuildIsoAsync();
        await using var nginx = await NginxServer.StartAsync();
        nginx.Put("boot.iso", await File.ReadAllBytesAsync(iso));
        var requestsBefore = File.Exists(nginx.AccessLogPath) ? File.ReadAllLines(nginx.AccessLogPath).Length : 0;

        await BootAsync(nginx.HttpUrl("/boot.iso"));

        // The boot read the image in ranges, not as one download.
        var ranged = File.ReadAllLines(nginx.AccessLogPath).Skip(requestsBefore).Select(AccessLogEntry.Parse).Where(e => e.Status == 206).ToList();
        Assert.NotEmpty(ranged);
    }

    private static async Task<string> BuildIsoAsync()
    {
        string script = Path.Combine(AppContext.BaseDirectory, "Nbd", "Boot", "build-boot-iso.sh");
        var build = (await NbdTool.RunAsync("bash", [script, Marker], TimeSpan.FromMinutes(5))).EnsureSuccess();
        string iso = build.Stdout.Trim().Split('\n')[^1];
        Assert.True(File.Exists(iso), $"no ISO at '{iso}': {build.Stderr}");
        return iso;
    }

    private static async Task BootAsync(string spec)
    {
        using var dir = new NbdTempDir();
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--read-only", spec);
        var qemu = await NbdTool.RunAsync("qemu-system-x86_64",
            ["-machine", "accel=tcg", "-nographic", "-m", "512", "-no-reboot", "-nodefaults", "-serial", "stdio",
             "-drive", $"media=cdrom,readonly=on,format=raw,file={serve.Uri}", "-boot", "d"],
            TimeSpan.FromMinutes(4));
        Assert.True(qemu.Stdout.Contains(Marker, StringComparison.Ordinal), $"no marker in the serial output:\n{Tail(qemu.Stdout)}\n{qemu.Stderr}\nserver: {serve.Stderr}");
        Assert.Equal(0, qemu.ExitCode);

        // qemu was the only client: the server leaves by itself.
        Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(20)));
    }

    private static string Tail(string s) => s.Length > 2000 ? s[^2000..] : s;
}
