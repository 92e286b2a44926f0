using UrlDisk.Specs;

namespace UrlDisk.Formats.Vmdk;

/// <summary>What <c>convert -O vmdk -o …</c> accepts. Only streamOptimized is written (the form vSphere and OVAs take).</summary>
internal sealed record VmdkCreateOptions
{
    public const string StreamOptimized = "streamOptimized";

    public static IReadOnlyList<string> Names { get; } = ["subformat", "adapter_type", "hwversion", "toolsversion"];

    private static readonly string[] Adapters = ["ide", "buslogic", "lsilogic", "legacyESX"];

    /// <summary>ddb.adapterType: ide (QEMU's default), buslogic, lsilogic or legacyESX.</summary>
    public string AdapterType { get; init; } = "ide";

    /// <summary>ddb.virtualHWVersion.</summary>
    public int HardwareVersion { get; init; } = 4;

    /// <summary>ddb.toolsVersion (2147483647: tools not installed).</summary>
    public string ToolsVersion { get; init; } = "2147483647";

    /// <summary>Parses <c>key=value,…</c> (qemu-img's -o); <c>subformat=streamOptimized</c> is required.</summary>
    public static VmdkCreateOptions Parse(string? text)
    {
        var tree = SpecParser.ParseKeyValue(text ?? "");
        tree.RejectUnknown("vmdk", Names);
        string? subformat = tree["subformat"];
        if (subformat != StreamOptimized)
        {
            throw new OptionException($"vmdk: subformat={subformat ?? "(not given; qemu-img's default is monolithicSparse)"} is not written; only -o subformat=streamOptimized");
        }

        string adapter = tree["adapter_type"] ?? "ide";
        if (!Adapters.Contains(adapter))
        {
            throw new OptionException($"vmdk: adapter_type={adapter} is not allowed; allowed: {string.Join(", ", Adapters)}");
        }

        string tools = tree["toolsversion"] ?? "2147483647";
        if (!uint.TryParse(tools, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))
        {
            throw new OptionException($"vmdk: toolsversion={tools} is not allowed; give a number");
        }

        return new VmdkCreateOptions
        {
            AdapterType = adapter,
            HardwareVersion = tree.GetInt("hwversion", 4, 4, 99),
            ToolsVersion = tools,
        };
    }
}
