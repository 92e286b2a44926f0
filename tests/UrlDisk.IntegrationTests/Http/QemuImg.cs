using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>Runs the real qemu-img (qemu-utils; its curl driver is in qemu-block-extra) for cross-checks.</summary>
internal static class QemuImg
{
    public static Task<ProcessResult> RunAsync(params string[] args)
    {
        string qemuImg = ProcessRunner.RequireTool("qemu-img", "qemu-utils");
        if (!Directory.EnumerateFiles("/usr/lib", "block-curl.so", SearchOption.AllDirectories).Any())
        {
            throw new InvalidOperationException("QEMU's curl block driver (block-curl.so) is not installed; install the Debian package qemu-block-extra (scripts/test.sh does it)");
        }

        return ProcessRunner.RunAsync(qemuImg, args, TimeSpan.FromMinutes(3), TestEnvironment.NoProxy);
    }
}
