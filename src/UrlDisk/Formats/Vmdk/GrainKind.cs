namespace UrlDisk.Formats.Vmdk;

/// <summary>What a grain table entry says about a grain.</summary>
internal enum GrainKind
{
    /// <summary>GTE 0 (or no grain table): read the parent, else zeros.</summary>
    Unallocated,

    /// <summary>GTE 1 with the zeroed-grain flag: zeros, the parent is not consulted.</summary>
    Zero,

    /// <summary>The grain's data at a sector of the file.</summary>
    Data,

    /// <summary>A grain marker and zlib data at a sector of the file.</summary>
    Compressed,
}
