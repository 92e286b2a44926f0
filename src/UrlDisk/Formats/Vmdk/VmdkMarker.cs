using System.Buffers.Binary;

namespace UrlDisk.Formats.Vmdk;

/// <summary>
/// The markers of a streamOptimized file: a grain marker (lba u64, size u32, then zlib data) or a metadata marker
/// (numSectors u64, size u32 = 0, type u32, padding to a sector).
/// </summary>
internal static class VmdkMarker
{
    public const int GrainMarkerHeader = 12;
    public const uint TypeEndOfStream = 0;
    public const uint TypeGrainTable = 1;
    public const uint TypeGrainDirectory = 2;
    public const uint TypeFooter = 3;

    public static bool TryReadGrainMarker(ReadOnlySpan<byte> b, long grainBytes, out ulong lba, out int size, out string? error)
    {
        lba = 0;
        size = 0;
        if (b.Length < GrainMarkerHeader)
        {
            error = $"grain marker: {b.Length} bytes, need {GrainMarkerHeader}";
            return false;
        }

        lba = BinaryPrimitives.ReadUInt64LittleEndian(b);
        uint s = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]);
        if (s == 0 || s > 2 * grainBytes)
        {
            error = $"grain marker: compressed size {s} is not allowed; allowed: 1 to {2 * grainBytes} (two grains)";
            return false;
        }

        size = (int)s;
        error = null;
        return true;
    }

    /// <summary>A metadata marker sector.</summary>
    public static void WriteMetadataMarker(Span<byte> sector, ulong numSectors, uint type)
    {
        sector[..512].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(sector, numSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[12..], type);
    }
}
