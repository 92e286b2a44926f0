using System.Diagnostics;
using UrlDisk.Opening;

namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary>Runs qemu-img and qemu-io (required: a missing tool fails the test) in a scratch directory.</summary>
internal sealed class QemuTools : IDisposable
{
    public QemuTools()
    {
        Dir = Directory.CreateTempSubdirectory("urldisk-qcow2-").FullName;
    }

    public string Dir { get; }

    public string PathOf(string name) => Path.Combine(Dir, name);

    public string Img(params string[] args) => Run("qemu-img", args);

    public string Io(params string[] args) => Run("qemu-io", args);

    /// <summary>Runs a tool in <see cref="Dir"/> and returns stdout; a non-zero exit fails unless <paramref name="allowedExit"/> says otherwise.</summary>
    public string Run(string tool, string[] args, params int[] allowedExit) => RunWithExit(tool, args, allowedExit.Length == 0 ? [0] : allowedExit).Output;

    public (int Exit, string Output) RunWithExit(string tool, string[] args, int[] allowedExit)
    {
        var (exit, stdout, stderr) = RunAll(tool, args);
        if (!allowedExit.Contains(exit))
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)} exited {exit}: {stdout}{stderr}");
        }

        return (exit, stdout);
    }

    /// <summary>Runs a tool in <see cref="Dir"/> whatever its exit code; returns the code, stdout and stderr.</summary>
    public (int Exit, string Stdout, string Stderr) RunAll(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { WorkingDirectory = Dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {tool}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', args)} timed out");
        }

        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The guest bytes as qemu sees them.</summary>
    public byte[] QemuRaw(string image)
    {
        string raw = PathOf($"expected-{Guid.NewGuid():N}.raw");
        Img("convert", "-O", "raw", image, raw);
        var bytes = File.ReadAllBytes(raw);
        File.Delete(raw);
        return bytes;
    }

    /// <summary>The guest bytes as UrlDisk reads them, in reads of <paramref name="chunk"/> bytes.</summary>
    public static async Task<byte[]> UrlDiskRawAsync(string spec, int chunk = 1 << 20, OpenContext? context = null)
    {
        await using var image = await ImageOpener.OpenAsync(spec, null, context);
        return await ReadAllAsync(image, chunk);
    }

    public static async Task<byte[]> ReadAllAsync(IBlockDevice image, int chunk = 1 << 20)
    {
        var all = new byte[image.Length];
        for (long pos = 0; pos < all.Length; pos += chunk)
        {
            int n = (int)Math.Min(chunk, all.Length - pos);
            await image.ReadAsync(pos, all.AsMemory((int)pos, n));
        }

        return all;
    }

    public static void AssertSameBytes(byte[] expected, byte[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        int i = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(i == expected.Length, $"first difference at offset {i}");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
