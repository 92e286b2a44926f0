using UrlDisk.IntegrationTests.Qcow2;

namespace UrlDisk.IntegrationTests.Vmdk;

/// <summary>A raw source with data, zeros and holes at grain/block edges, and images qemu-img makes from it.</summary>
internal static class FormatImages
{
    public const long Size = (6 << 20) + (192 << 10);

    /// <summary>Writes <c>base.raw</c> in <paramref name="q"/>'s directory and returns its bytes.</summary>
    public static byte[] MakeSource(QemuTools q)
    {
        q.Img("create", "-f", "raw", "base.raw", Size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        q.Io("-f", "raw", "-c", "write -P 0x11 0 1M", "-c", "write -P 0x22 1500k 100k", "-c", "write -P 0x33 4M 70k", "-c", "write -P 0x44 6200k 8k", "base.raw");
        return File.ReadAllBytes(q.PathOf("base.raw"));
    }

    /// <summary>qemu-img convert -O vmdk|vdi with <paramref name="options"/>; returns every file it made (descriptor first).</summary>
    public static string[] Convert(QemuTools q, string format, string options, string name)
    {
        var before = Directory.GetFiles(q.Dir).ToHashSet();
        q.Img("convert", "-f", "raw", "-O", format, "-o", options, "base.raw", name);
        return [name, .. Directory.GetFiles(q.Dir).Where(f => !before.Contains(f) && Path.GetFileName(f) != name).Select(Path.GetFileName).Order()!];
    }

    public static TheoryData<string, string> Kinds => new()
    {
        { "vmdk", "subformat=monolithicSparse" },
        { "vmdk", "subformat=streamOptimized" },
        { "vmdk", "subformat=monolithicFlat" },
        { "vmdk", "subformat=twoGbMaxExtentSparse" },
        { "vmdk", "subformat=twoGbMaxExtentFlat" },
        { "vmdk", "subformat=monolithicSparse,zeroed_grain=on" },
        { "vdi", "static=off" },
        { "vdi", "static=on" },
    };
}
