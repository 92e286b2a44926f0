using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary>A backing URL with user:password@ is stored as the user gave it, but never printed.</summary>
public sealed class BackingCredentialsTests
{
    [Fact]
    public async Task Create_and_info_never_print_the_password_and_say_credentials_are_stored()
    {
        using var dir = new TempDir("urldisk-cred");
        string image = dir.File("vm.qcow2");
        const string secret = "s3cret-backing-pw";
        var create = await UrlDiskCli.RunAsync("create", "-f", "qcow2", "-F", "raw", "-b", $"https://admin:{secret}@127.0.0.1:9/folder/test-flat.vmdk?dcPath=D", image, "1M");
        Assert.True(create.ExitCode == 0, create.ToString());
        Assert.DoesNotContain(secret, create.Stdout + create.Stderr, StringComparison.Ordinal);
        Assert.Contains("credentials", create.Stderr, StringComparison.Ordinal);

        // The name is stored as given (QEMU reads the same image the same way).
        Assert.Contains(secret, System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(image)), StringComparison.Ordinal);

        foreach (var output in new[] { "human", "json" })
        {
            var info = await UrlDiskCli.RunAsync("info", "--output", output, image);
            Assert.True(info.ExitCode == 0, info.ToString());
            Assert.DoesNotContain(secret, info.Stdout + info.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("admin", info.Stdout, StringComparison.Ordinal);
            Assert.Contains(output == "json" ? "backing-credentials" : "backing credentials", info.Stdout, StringComparison.Ordinal);
            Assert.Contains("127.0.0.1:9/folder/test-flat.vmdk?dcPath=D", info.Stdout, StringComparison.Ordinal);
        }
    }
}
