using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>
/// Images made by qemu-img and qemu-io (never by UrlDisk) in nginx's document root, so the same files are read
/// locally and over http: sparse raw, qcow2 v2 and v3 (zero clusters), compressed, a three-deep chain with relative
/// backing names, qcow2 over raw, a dirty lazy-refcounts image, vmdk and vpc, a vmdk chain, and flat copies for compare.
/// </summary>
public sealed class QemuImgCorpus : IAsyncLifetime
{
    private NginxServer? _nginx;

    public NginxServer Nginx => _nginx ?? throw new InvalidOperationException("nginx is not started");

    /// <summary>The folder holding the images (inside the document root).</summary>
    public string Dir => Path.Combine(Nginx.DocRoot, "corpus");

    /// <summary>An image's name as each tool is given it: a relative name run in <see cref="Dir"/>, or its URL.</summary>
    public string Name(string image, string where) => where == "local" ? image : Nginx.HttpUrl("/corpus/" + image);

    public static readonly string[] Images =
    [
        "sparse.raw", "v2.qcow2", "v3.qcow2", "compressed.qcow2", "base.qcow2", "mid.qcow2", "top.qcow2",
        "over-raw.qcow2", "dirty.qcow2", "disk.vmdk", "disk.vpc", "vmdk-base.vmdk", "vmdk-child.vmdk",
    ];

    public async Task InitializeAsync()
    {
        _nginx = await NginxServer.StartAsync();
        Directory.CreateDirectory(Dir);
        await QemuImg("create", "-f", "raw", "sparse.raw", "64M");
        await QemuIo("-f", "raw", "-c", "write -P 0x11 0 4k", "-c", "write -P 0x22 1M 64k", "-c", "write -P 0x33 40M 1M", "sparse.raw");

        await QemuImg("create", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "16M");
        await QemuIo("-c", "write -P 0x44 0 192k", "-c", "write -P 0x45 4M 64k", "v2.qcow2");

        await QemuImg("create", "-f", "qcow2", "v3.qcow2", "16M");
        await QemuIo("-c", "write -P 0x55 0 128k", "-c", "write -z 1M 256k", "-c", "write -P 0x56 2M 64k", "-c", "write -z 8M 64k", "v3.qcow2");

        await QemuImg("convert", "-c", "-f", "raw", "-O", "qcow2", "sparse.raw", "compressed.qcow2");

        // A chain with relative names: top -> mid -> base, data at every depth and a zero cluster in the middle.
        await QemuImg("create", "-f", "qcow2", "base.qcow2", "64M");
        await QemuIo("-c", "write -P 1 0 1M", "-c", "write -P 1 20M 64k", "base.qcow2");
        await QemuImg("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "mid.qcow2");
        await QemuIo("-c", "write -P 2 1M 1M", "-c", "write -z 512k 64k", "mid.qcow2");
        await QemuImg("create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2");
        await QemuIo("-c", "write -P 3 3M 64k", "-c", "write -P 3 1536k 64k", "top.qcow2");

        await QemuImg("create", "-f", "qcow2", "-b", "sparse.raw", "-F", "raw", "over-raw.qcow2");
        await QemuIo("-c", "write -P 4 2M 64k", "over-raw.qcow2");

        // Lazy refcounts and a writer that dies: the dirty bit stays set and the refcounts are stale.
        await QemuImg("create", "-f", "qcow2", "-o", "lazy_refcounts=on", "dirty.qcow2", "4M");
        await Run("qemu-io", ["-c", "write -P 5 0 128k", "-c", "abort", "dirty.qcow2"], exitAllowed: _ => true);

        await QemuImg("convert", "-f", "raw", "-O", "vmdk", "sparse.raw", "disk.vmdk");
        await QemuImg("convert", "-f", "raw", "-O", "vpc", "sparse.raw", "disk.vpc");

        // A vmdk chain made by qemu-img (a differencing vmdk names its parent by parentFileNameHint).
        await QemuImg("create", "-f", "vmdk", "vmdk-base.vmdk", "16M");
        await QemuIo("-f", "vmdk", "-c", "write -P 6 0 1M", "-c", "write -P 6 8M 64k", "vmdk-base.vmdk");
        await QemuImg("create", "-f", "vmdk", "-b", "vmdk-base.vmdk", "-F", "vmdk", "vmdk-child.vmdk");
        await QemuIo("-f", "vmdk", "-c", "write -P 7 512k 1M", "-c", "write -P 7 12M 64k", "vmdk-child.vmdk");

        // Flat copies for compare: what the chain reads as, and the same with one byte changed.
        await QemuImg("convert", "-O", "raw", "top.qcow2", "top-flat.raw");
        await QemuImg("convert", "-O", "raw", "top.qcow2", "top-changed.raw");
        await QemuIo("-f", "raw", "-c", "write -P 9 1600k 1", "top-changed.raw");
        File.Copy(Path.Combine(Dir, "sparse.raw"), Path.Combine(Dir, "sparse-longer.raw"));
        await QemuImg("resize", "-f", "raw", "sparse-longer.raw", "80M");
    }

    private Task QemuImg(params string[] args) => Run("qemu-img", args);

    private Task QemuIo(params string[] args) => Run("qemu-io", args);

    private async Task Run(string tool, string[] args, Func<int, bool>? exitAllowed = null)
    {
        var r = await ProcessRunner.RunAsync(ProcessRunner.RequireTool(tool, "qemu-utils"), args, workingDirectory: Dir);
        if (!(exitAllowed ?? (e => e == 0))(r.ExitCode))
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)}: {r}");
        }
    }

    public async Task DisposeAsync()
    {
        if (_nginx is not null)
        {
            await _nginx.DisposeAsync();
        }
    }
}
