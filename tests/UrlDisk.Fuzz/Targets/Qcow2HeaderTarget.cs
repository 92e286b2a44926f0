using System.Buffers.Binary;
using UrlDisk.Formats.Qcow2;

namespace UrlDisk.Fuzz.Targets;

/// <summary>The qcow2 span codecs: header, header extensions, snapshot entries, L2 and compressed descriptors.</summary>
public sealed class Qcow2HeaderTarget : IFuzzTarget
{
    public string Name => "qcow2-header";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (!Qcow2Header.TryRead(input, out var header, out string? error))
        {
            if (string.IsNullOrEmpty(error) && input.Length >= Qcow2Header.V2Length)
            {
                throw new InvalidOperationException("a refused header must say why");
            }

            return;
        }

        // A header that was accepted must describe itself consistently.
        if (header.ClusterBits is < 9 or > 21 || header.HeaderLength > input.Length && header.Version >= 3)
        {
            throw new InvalidOperationException($"accepted header with cluster_bits {header.ClusterBits}, length {header.HeaderLength}");
        }

        var buffer = new byte[Math.Max(header.HeaderLength, Qcow2Header.V2Length)];
        header.Write(buffer);

        int extensionsStart = header.Version == 2 ? Qcow2Header.V2Length : (int)header.HeaderLength;
        if (extensionsStart < input.Length)
        {
            HeaderExtension.TryReadAll(input[extensionsStart..], extensionsStart, out _, out _);
        }

        var rest = input[Math.Min(input.Length, Qcow2Header.V2Length)..];
        for (int n = 0; n < 64 && SnapshotEntry.TryRead(rest, out var snapshot, out int consumed) && consumed > 0 && consumed <= rest.Length; n++)
        {
            _ = snapshot.StoredLength;
            rest = rest[consumed..];
        }

        for (var entries = input; entries.Length >= 8; entries = entries[8..])
        {
            var l2 = new L2Entry(BinaryPrimitives.ReadUInt64BigEndian(entries));
            _ = l2.Kind;
            if (l2.IsCompressed)
            {
                var d = CompressedDescriptor.Decode(l2.Raw, header.ClusterBits);
                if (d.HostOffset < 0 || d.SectorCount < 1)
                {
                    throw new InvalidOperationException($"compressed descriptor decoded to {d}");
                }
            }
        }
    }
}
