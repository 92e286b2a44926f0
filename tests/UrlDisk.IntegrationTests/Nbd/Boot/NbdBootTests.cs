namespace UrlDisk.IntegrationTests.Nbd.Boot;

/// <summary>
/// A real machine boots from <c>urldisk serve</c>: QEMU (TCG) reads a GRUB ISO as a CD-ROM over NBD, GRUB loads
/// Debian's cloud kernel and a busybox initramfs, whose /init prints a marker on the serial port and powers off.
/// </summary>
public class NbdBootTests
{
    private const string Marker = "URLDISK-NBD-BOOT-OK";

    [Fact]
    public async Task Qemu_boots_an_iso_served_over_nbd_and_prints_the_marker()
    {
        string script = Path.Combine(AppContext.BaseDirectory, "Nbd", "Boot", "build-boot-iso.sh");
        var build = (await NbdTool.RunAsync("bash", [script, Marker], TimeSpan.FromMinutes(5))).EnsureSuccess();
        string iso = build.Stdout.Trim().Split('\n')[^1];
        Assert.True(File.Exists(iso), $"no ISO at '{iso}': {build.Stderr}");

        using var dir = new NbdTempDir();
        await using var serve = await ServeProcess.StartAsync("--socket", dir.File("s"), "--read-only", iso);
        var qemu = await NbdTool.RunAsync("qemu-system-x86_64",
            ["-machine", "accel=tcg", "-nographic", "-m", "512", "-no-reboot", "-nodefaults", "-serial", "stdio",
             "-drive", $"media=cdrom,readonly=on,format=raw,file={serve.Uri}", "-boot", "d"],
            TimeSpan.FromMinutes(4));
        Assert.True(qemu.Stdout.Contains(Marker, StringComparison.Ordinal), $"no marker in the serial output:\n{Tail(qemu.Stdout)}\n{qemu.Stderr}");
        Assert.Equal(0, qemu.ExitCode);

        // qemu was the only client: the server leaves by itself.
        Assert.Equal(0, await serve.WaitForExitAsync(TimeSpan.FromSeconds(20)));
    }

    private static string Tail(string s) => s.Length > 2000 ? s[^2000..] : s;
}
