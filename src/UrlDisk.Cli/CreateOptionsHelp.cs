using System.Text;

namespace UrlDisk.Cli;

/// <summary>
/// <c>-o help</c> and <c>-o ?</c> on create and convert: the creation options of a format, in qemu-img's layout
/// (<c>  name=&lt;type&gt; - description</c>), listing only what urldisk accepts.
/// </summary>
internal static class CreateOptionsHelp
{
    private static readonly (string Name, string Type, string Description)[] Qcow2 =
    [
        ("backing_file", "str", "File name of a base image"),
        ("backing_fmt", "str", "Image format of the base image"),
        ("cluster_size", "size", "qcow2 cluster size"),
        ("compat", "str", "Compatibility level (v2 [0.10] or v3 [1.1])"),
        ("compression_type", "str", "Compression method used for image cluster compression (zlib or zstd)"),
        ("extended_l2", "bool (on/off)", "Extended L2 tables"),
        ("lazy_refcounts", "bool (on/off)", "Postpone refcount updates"),
        ("preallocation", "str", "Preallocation mode (allowed values: off, metadata, falloc, full)"),
        ("refcount_bits", "num", "Width of a reference count entry in bits"),
        ("size", "size", "Virtual disk size"),
    ];

    private static readonly (string Name, string Type, string Description)[] Raw =
    [
        ("preallocation", "str", "Preallocation mode (allowed values: off, falloc, full)"),
        ("size", "size", "Virtual disk size"),
    ];

    private static readonly (string Name, string Type, string Description)[] Vmdk =
    [
        ("adapter_type", "str", "Virtual adapter type, can be one of ide (default), lsilogic, buslogic or legacyESX"),
        ("hwversion", "str", "VMDK hardware version"),
        ("subformat", "str", "VMDK extent format: streamOptimized (the one urldisk writes)"),
        ("toolsversion", "str", "VMware guest tools version"),
    ];

    private static readonly (string Name, string Type, string Description)[] Vpc =
    [
        ("force_size", "bool (on/off)", "Force disk size calculation to use the actual size specified, rather than using the nearest CHS-based calculation"),
        ("subformat", "str", "Type of virtual hard disk format: fixed (the one urldisk writes)"),
    ];

    /// <summary>True when the <c>-o</c> values ask for the list (qemu-img: <c>help</c> or <c>?</c> among them).</summary>
    public static bool Asked(IEnumerable<string>? values)
        => values is not null && values.SelectMany(v => v.Split(',')).Any(v => v is "help" or "?");

    /// <summary>The list for <paramref name="format"/>, or null when urldisk writes no such format.</summary>
    public static string? For(string format)
    {
        var options = format switch
        {
            "qcow2" => Qcow2,
            "raw" => Raw,
            "vmdk" => Vmdk,
            "vpc" => Vpc,
            _ => null,
        };
        if (options is null)
        {
            return null;
        }

        var text = new StringBuilder($"Supported {format} options:\n");
        foreach (var (name, type, description) in options)
        {
            text.Append("  ").Append($"{name}=<{type}>".PadRight(22)).Append(" - ").Append(description).Append('\n');
        }

        return text.ToString();
    }
}
