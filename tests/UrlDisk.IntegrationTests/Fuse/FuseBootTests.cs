using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Nbd;

namespace UrlDisk.IntegrationTests.Fuse;

/// <summary>
/// A real machine boots from a file that <c>urldisk mount</c> serves: QEMU (TCG) opens the mounted file as a plain
/// raw CD-ROM, the ISO behind it is read from nginx over HTTP. The ISO is the NBD boot tests' (GRUB, kernel, busybox).
/// </summary>
public class FuseBootTests
{
    private const string Marker = "URLDISK-FUSE-BOOT-OK";

    [FuseFact]
    public async Task Qemu_boots_an_iso_from_a_file_mounted_from_nginx()
    {
        string script = Path.Combine(AppContext.BaseDirectory, "Nbd", "Boot", "build-boot-iso.sh");
        var build = (await NbdTool.RunAsync("bash", [script, Marker], TimeSpan.FromMinutes(5))).EnsureSuccess();
        string iso = build.Stdout.Trim().Split('\n')[^1];
        await using var nginx = await NginxServer.StartAsync();
        string path = nginx.Put("boot.iso", await File.ReadAllBytesAsync(iso));
        using var dir = new TempDir("fuse-boot");
        string file = dir.File("boot.iso");
        await File.WriteAllBytesAsync(file, []);

        await using var mount = await MountProcess.StartAsync(nginx.HttpUrl(path), file);
        var qemu = await NbdTool.RunAsync("qemu-system-x86_64",
            ["-machine", "accel=tcg", "-nographic", "-m", "512", "-no-reboot", "-nodefaults", "-serial", "stdio",
             "-drive", $"media=cdrom,readonly=on,format=raw,file={file}", "-boot", "d"],
            TimeSpan.FromMinutes(4));
        string serial = qemu.Stdout.Length > 2000 ? qemu.Stdout[^2000..] : qemu.Stdout;
        Assert.True(qemu.Stdout.Contains(Marker, StringComparison.Ordinal), $"no marker in the serial output:\n{serial}\n{qemu.Stderr}\nmount: {mount.Stderr}");
        Assert.Equal(0, qemu.ExitCode);
        Assert.Equal(0, await mount.StopAsync());
    }
}
