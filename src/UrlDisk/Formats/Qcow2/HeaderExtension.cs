using System.Buffers.Binary;

namespace UrlDisk.Formats.Qcow2;

/// <summary>One header extension: <c>u32 type, u32 length, data padded to 8</c>.</summary>
internal sealed record HeaderExtension(uint Type, byte[] Data)
{
    public const uint End = 0;
    public const uint BackingFormat = 0xE2792ACA;
    public const uint FeatureNameTable = 0x6803F857;
    public const uint Bitmaps = 0x23852875;
    public const uint FullDiskEncryption = 0x0537BE77;
    public const uint ExternalDataFile = 0x44415441;

    /// <summary>Bytes this extension takes when written, padding included.</summary>
    public int StoredLength => 8 + ((Data.Length + 7) & ~7);

    /// <summary>
    /// Parses the extension area (from header_length up to the backing name or end of cluster 0).
    /// <paramref name="areaOffset"/> is only used to name offsets in errors.
    /// </summary>
    public static bool TryReadAll(ReadOnlySpan<byte> area, long areaOffset, out List<HeaderExtension> extensions, out string? error)
    {
        extensions = [];
        error = null;
        int pos = 0;
        while (pos + 8 <= area.Length)
        {
            uint type = BinaryPrimitives.ReadUInt32BigEndian(area[pos..]);
            uint length = BinaryPrimitives.ReadUInt32BigEndian(area[(pos + 4)..]);
            if (type == End)
            {
                return true;
            }

            if (length > area.Length - pos - 8)
            {
                error = $"header extension 0x{type:x8} at offset {areaOffset + pos}: length {length} runs past the extension area";
                return false;
            }

            extensions.Add(new HeaderExtension(type, area.Slice(pos + 8, (int)length).ToArray()));
            pos += 8 + (int)((length + 7) & ~7u);
        }

        // An area that ends without an end marker is accepted (as QEMU does when space runs out).
        return true;
    }

    /// <summary>Writes the extension with its padding; returns the bytes written.</summary>
    public int Write(Span<byte> destination)
    {
        int stored = StoredLength;
        destination[..stored].Clear();
        BinaryPrimitives.WriteUInt32BigEndian(destination, Type);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], (uint)Data.Length);
        Data.CopyTo(destination[8..]);
        return stored;
    }
}
