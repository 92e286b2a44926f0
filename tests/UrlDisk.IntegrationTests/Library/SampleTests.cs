using System.Security.Cryptography;
using UrlDisk.IntegrationTests.Infrastructure;
using UrlDisk.IntegrationTests.Nbd;

namespace UrlDisk.IntegrationTests.Library;

/// <summary>The samples (public API only) run against local servers; the README's library snippet is one of them, verbatim.</summary>
public sealed class SampleTests
{
    private static async Task<ProcessResult> RunSampleAsync(string name, string workingDirectory, params string[] args)
        => await ProcessRunner.RunAsync("dotnet", [Repository.Sample(name), .. args], workingDirectory: workingDirectory);

    [Fact]
    public void The_readme_library_snippet_is_the_sample_the_build_compiles()
    {
        string readme = File.ReadAllText(Path.Combine(Repository.Root, "README.md")).ReplaceLineEndings("\n");
        int section = readme.IndexOf("\n## The library\n", StringComparison.Ordinal);
        Assert.True(section >= 0, "README.md has no '## The library' section");
        int start = readme.IndexOf("```csharp\n", section, StringComparison.Ordinal);
        Assert.True(start >= 0, "the library section has no csharp block");
        start += "```csharp\n".Length;
        int end = readme.IndexOf("```\n", start, StringComparison.Ordinal);
        string snippet = readme[start..end];
        string sample = File.ReadAllText(Path.Combine(Repository.Root, "samples", "ReadmeLibrary", "Program.cs")).ReplaceLineEndings("\n");
        Assert.Equal(sample, snippet);

        // Every csharp block of the README is that one (a second block would not be compiled).
        Assert.Equal(1, readme.Split("```csharp\n").Length - 1);
    }

    [Fact]
    public async Task The_readme_library_snippet_runs()
    {
        await using var server = await FaultHttpServer.StartAsync();
        var data = ImageFactory.Random(3 << 20, seed: 160);
        server.Map("/disk.img", new RangeFile(data));
        using var tmp = new TempDir();
        var r = await RunSampleAsync("ReadmeLibrary", tmp.Path, server.Url("/disk.img"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("copy.qcow2: 0 corruptions, 0 leaks", r.Stdout, StringComparison.Ordinal);
        Assert.Contains($"{server.Url("/disk.img")}: {data.Length} bytes", r.Stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(tmp.Path, "top.qcow2")));

        await File.WriteAllBytesAsync(tmp.File("orig.raw"), data);
        var copy = await ProcessRunner.RunAsync("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", Path.Combine(tmp.Path, "copy.qcow2"), tmp.File("orig.raw")]);
        Assert.True(copy.ExitCode == 0, copy.ToString());
        Assert.Contains(server.Requests("/disk.img"), q => q.Header("X-Tenant") == "blue");
    }

    [Fact]
    public async Task ReadStream_hashes_a_remote_image()
    {
        await using var server = await FaultHttpServer.StartAsync();
        var data = ImageFactory.Random((1 << 20) + 4096, seed: 161);
        server.Map("/disk.img", new RangeFile(data));
        using var tmp = new TempDir();
        var r = await RunSampleAsync("ReadStream", tmp.Path, server.Url("/disk.img"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal($"{data.Length} {Convert.ToHexStringLower(SHA256.HashData(data))}", r.Stdout.Trim());
    }

    [Fact]
    public async Task CopyOnReadOverlay_keeps_every_byte_in_the_overlay()
    {
        var data = ImageFactory.Random(2 << 20, seed: 162);
        using var tmp = new TempDir();
        string overlay = tmp.File("top.qcow2");
        await using (var server = await FaultHttpServer.StartAsync())
        {
            server.Map("/disk.img", new RangeFile(data));
            var r = await RunSampleAsync("CopyOnReadOverlay", tmp.Path, server.Url("/disk.img"), overlay);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("copied", r.Stdout, StringComparison.Ordinal);
        }

        // The server is gone: qemu-img reads the overlay alone (no backing) and finds the image's bytes.
        await File.WriteAllBytesAsync(tmp.File("orig.raw"), data);
        var compare = await ProcessRunner.RunAsync("qemu-img", ["compare", "--image-opts",
            $"driver=qcow2,file.driver=file,file.filename={overlay},backing=", $"driver=raw,file.driver=file,file.filename={tmp.File("orig.raw")}"]);
        Assert.True(compare.ExitCode == 0, compare.ToString());
    }

    [Fact]
    public async Task ServeNbd_serves_an_image_to_a_real_client()
    {
        await using var server = await FaultHttpServer.StartAsync();
        var data = ImageFactory.Random(1 << 20, seed: 163);
        server.Map("/disk.img", new RangeFile(data));
        using var tmp = new TempDir();
        int port = FreePort.Get();
        await using var sample = ProcessRunner.Start("dotnet", [Repository.Sample("ServeNbd"), server.Url("/disk.img"), port.ToString(System.Globalization.CultureInfo.InvariantCulture)], redirectStdin: true);
        Assert.True(await FreePort.WaitUntilListeningAsync(port, TimeSpan.FromSeconds(60), () => sample.HasExited), $"the sample did not listen: {sample.Stderr}");
        string copy = tmp.File("copy.raw");
        var r = await NbdTool.RunAsync("nbdcopy", [$"nbd://127.0.0.1:{port}", copy]);
        Assert.True(r.ExitCode == 0, r.ToString());
        ImageFactory.AssertSameBytes(data, await File.ReadAllBytesAsync(copy), "nbdcopy of the sample's export");

        // Closing its stdin stops the server cleanly.
        sample.Process.StandardInput.Close();
        await sample.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, sample.Process.ExitCode);
    }
}
