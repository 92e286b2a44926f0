using System.Buffers.Binary;
using System.Security.Cryptography;

namespace UrlDisk.Layers.Prefetch;

/// <summary>
/// A recorded working set: the byte ranges of one version of an image file that a boot read, in the order it first
/// read them. The file form is small and self-checking (all integers big-endian):
/// <code>
/// "UDPROFIL"  magic, 8 bytes
/// u16 version (1)   u16 flags (0)   u32 range count
/// u64 image length
/// 32 bytes identity key (ContentIdentity.Key, SHA-256)
/// count × (u64 offset, u64 length)
/// 32 bytes SHA-256 of everything before it
/// </code>
/// </summary>
/// <param name="IdentityKey">The image version it was recorded on (<see cref="Sources.ContentIdentity.Key"/>, 64 hex digits).</param>
/// <param name="ImageLength">The image file's size then.</param>
/// <param name="Ranges">Ranges in first-access order, each inside the image (a recorder writes no overlaps; readers cope with them).</param>
internal sealed record BootProfile(string IdentityKey, long ImageLength, IReadOnlyList<ProfileRange> Ranges)
{
    public const ushort Version = 1;

    /// <summary>More ranges than any boot needs (a boot makes thousands of reads, merged into far fewer ranges).</summary>
    public const int MaxRanges = 1 << 20;

    private const int HeaderSize = 8 + 2 + 2 + 4 + 8 + 32;
    private const int RangeSize = 16;
    private const int ChecksumSize = 32;

    private static ReadOnlySpan<byte> Magic => "UDPROFIL"u8;

    /// <summary>The file form (see the type's summary).</summary>
    public byte[] Encode()
    {
        if (Ranges.Count > MaxRanges)
        {
            throw new InvalidOperationException($"a profile holds at most {MaxRanges} ranges");
        }

        var bytes = new byte[HeaderSize + (Ranges.Count * RangeSize) + ChecksumSize];
        var span = bytes.AsSpan();
        Magic.CopyTo(span);
        BinaryPrimitives.WriteUInt16BigEndian(span[8..], Version);
        BinaryPrimitives.WriteUInt16BigEndian(span[10..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(span[12..], (uint)Ranges.Count);
        BinaryPrimitives.WriteInt64BigEndian(span[16..], ImageLength);
        if (IdentityKey.Length != 64)
        {
            throw new InvalidOperationException("the identity key must be 64 hex digits");
        }

        Convert.FromHexString(IdentityKey).CopyTo(span[24..]);

        int at = HeaderSize;
        foreach (var r in Ranges)
        {
            BinaryPrimitives.WriteInt64BigEndian(span[at..], r.Offset);
            BinaryPrimitives.WriteInt64BigEndian(span[(at + 8)..], r.Length);
            at += RangeSize;
        }

        SHA256.HashData(span[..at], span[at..]);
        return bytes;
    }

    /// <summary>
    /// Parses the file form. False with <paramref name="error"/> saying what is wrong when the bytes are not a valid
    /// profile; a valid profile of another format version is also false (<paramref name="unsupportedVersion"/> set),
    /// so callers can ignore it rather than call it damaged.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out BootProfile? profile, out string error, out bool unsupportedVersion)
    {
        profile = null;
        unsupportedVersion = false;
        if (!data.StartsWith(Magic))
        {
            error = "not a urldisk boot profile (no UDPROFIL header)";
            return false;
        }

        if (data.Length < HeaderSize + ChecksumSize)
        {
            error = $"truncated or damaged: {data.Length} bytes, shorter than any profile";
            return false;
        }

        ushort version = BinaryPrimitives.ReadUInt16BigEndian(data[8..]);
        if (version != Version)
        {
            unsupportedVersion = true;
            error = $"profile format version {version}; this urldisk reads version {Version}";
            return false;
        }

        uint count = BinaryPrimitives.ReadUInt32BigEndian(data[12..]);
        if (count > MaxRanges || data.Length != HeaderSize + ((long)count * RangeSize) + ChecksumSize)
        {
            error = $"truncated or damaged: {data.Length} bytes do not hold the {count} ranges the header announces";
            return false;
        }

        int body = data.Length - ChecksumSize;
        Span<byte> sum = stackalloc byte[32];
        SHA256.HashData(data[..body], sum);
        if (!sum.SequenceEqual(data[body..]))
        {
            error = "damaged: the checksum does not match";
            return false;
        }

        if (BinaryPrimitives.ReadUInt16BigEndian(data[10..]) != 0)
        {
            error = "unknown flags";
            return false;
        }

        long length = BinaryPrimitives.ReadInt64BigEndian(data[16..]);
        if (length < 0)
        {
            error = $"negative image length {length}";
            return false;
        }

        var ranges = new ProfileRange[count];
        for (int i = 0; i < ranges.Length; i++)
        {
            var at = data[(HeaderSize + (i * RangeSize))..];
            long offset = BinaryPrimitives.ReadInt64BigEndian(at);
            long size = BinaryPrimitives.ReadInt64BigEndian(at[8..]);
            if (offset < 0 || size <= 0 || size > length - offset)
            {
                error = $"range {i} ({offset}+{size}) is not inside the image of {length} bytes";
                return false;
            }

            ranges[i] = new ProfileRange(offset, size);
        }

        profile = new BootProfile(Convert.ToHexStringLower(data.Slice(24, 32)), length, ranges);
        error = "";
        return true;
    }
}
