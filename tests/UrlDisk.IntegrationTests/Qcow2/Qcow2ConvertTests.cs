namespace UrlDisk.IntegrationTests.Qcow2;

/// <summary><c>convert -O qcow2 [-c] [-o …]</c> judged by qemu-img check and compare.</summary>
public class Qcow2ConvertTests
{
    private static (int Exit, string Output) Urldisk(QemuTools q, params string[] args)
        => q.RunWithExit(Infrastructure.UrlDiskCli.Launcher, args, [0, 1]);

    [Theory]
    [InlineData(false, "")]
    [InlineData(true, "")]
    [InlineData(true, "compression_type=zstd")]
    [InlineData(true, "compression_type=zstd,cluster_size=2M")]
    [InlineData(true, "compat=0.10,cluster_size=4096")]
    [InlineData(false, "extended_l2=on,cluster_size=32k")]
    public void Convert_to_qcow2_matches_the_source(bool compress, string options)
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "src.qcow2", "6M");
        q.Io("-c", "write -P 0x12 0 700k", "-c", "write -P 0x34 2M 1000k", "-c", "write -z 3M 64k", "-c", "write -P 0x56 5000k 100k", "src.qcow2");
        var args = new List<string> { "convert", "-O", "qcow2" };
        if (compress)
        {
            args.Add("-c");
        }

        if (options.Length > 0)
        {
            args.AddRange(["-o", options]);
        }

        args.AddRange(["src.qcow2", "out.qcow2"]);
        var (exit, output) = Urldisk(q, [.. args]);
        Assert.True(exit == 0, output);
        q.Img("check", "out.qcow2");
        q.Img("compare", "src.qcow2", "out.qcow2");
        string check = q.Img("check", "--output=json", "out.qcow2");
        if (compress)
        {
            Assert.Matches("\"compressed-clusters\": [1-9]", check);
        }
        else
        {
            Assert.DoesNotMatch("\"compressed-clusters\": [1-9]", check);
        }

        Assert.Empty(Directory.GetFiles(q.Dir, "*.part"));
    }

    [Fact]
    public void Convert_into_an_existing_qcow2_with_n_overwrites_its_contents()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "src.qcow2", "2M");
        q.Io("-c", "write -P 0x21 0 1M", "src.qcow2");
        q.Img("create", "-f", "qcow2", "dst.qcow2", "2M");
        q.Io("-c", "write -P 0x99 0 2M", "dst.qcow2");
        Assert.Equal(0, Urldisk(q, "convert", "-n", "-O", "qcow2", "src.qcow2", "dst.qcow2").Exit);
        q.Img("check", "dst.qcow2");
        q.Img("compare", "src.qcow2", "dst.qcow2");
    }

    [Fact]
    public void Bad_convert_options_are_refused_and_leave_nothing()
    {
        using var q = new QemuTools();
        q.Img("create", "-f", "qcow2", "src.qcow2", "1M");
        Assert.Equal(1, Urldisk(q, "convert", "-O", "raw", "-c", "src.qcow2", "out.raw").Exit);
        Assert.Equal(1, Urldisk(q, "convert", "-O", "qcow2", "-o", "compression_type=lz4", "src.qcow2", "out.qcow2").Exit);
        Assert.False(File.Exists(q.PathOf("out.qcow2")));
        Assert.Empty(Directory.GetFiles(q.Dir, "*.part"));
    }
}
