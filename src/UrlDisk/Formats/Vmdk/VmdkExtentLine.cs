namespace UrlDisk.Formats.Vmdk;

/// <summary>One extent line of a descriptor: <c>ACCESS SECTORS TYPE "FILE" [OFFSET]</c>.</summary>
/// <param name="Access">RW, RDONLY or NOACCESS.</param>
/// <param name="Sectors">Length of the extent in 512-byte sectors.</param>
/// <param name="Type">FLAT, SPARSE, ZERO, VMFS, … (upper case).</param>
/// <param name="FileName">The extent's file, relative to the descriptor; null for ZERO.</param>
/// <param name="Offset">Sectors into the file where the extent starts (FLAT only).</param>
internal sealed record VmdkExtentLine(string Access, long Sectors, string Type, string? FileName, long Offset);
