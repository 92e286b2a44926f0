namespace UrlDisk.Formats.Qcow2;

/// <summary>Feature bits of the qcow2 header and their names when no feature-name table says otherwise.</summary>
internal static class Qcow2Features
{
    public const ulong Dirty = 1 << 0;
    public const ulong Corrupt = 1 << 1;
    public const ulong ExternalDataFile = 1 << 2;
    public const ulong CompressionType = 1 << 3;
    public const ulong ExtendedL2 = 1 << 4;

    /// <summary>Incompatible bits this implementation understands.</summary>
    public const ulong KnownIncompatible = Dirty | Corrupt | ExternalDataFile | CompressionType | ExtendedL2;

    public const ulong LazyRefcounts = 1 << 0;
    public const ulong BitmapsConsistent = 1 << 0;

    public static string DefaultIncompatibleName(int bit) => bit switch
    {
        0 => "dirty bit",
        1 => "corrupt bit",
        2 => "external data file",
        3 => "compression type",
        4 => "extended L2 entries",
        _ => $"unknown incompatible feature bit {bit}",
    };
}
