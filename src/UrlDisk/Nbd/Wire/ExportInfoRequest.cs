using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>Data of NBD_OPT_INFO and NBD_OPT_GO: u32 name length, name, u16 count, count × u16 info types.</summary>
internal sealed record ExportInfoRequest(string ExportName, IReadOnlyList<NbdInfoType> Requests)
{
    public int EncodedLength => 4 + NbdStrings.ByteCount(ExportName) + 2 + (2 * Requests.Count);

    /// <summary>Parses the whole option data; false when it is malformed (lengths that disagree, bad UTF-8, trailing bytes).</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out ExportInfoRequest? value)
    {
        value = null;
        if (data.Length < 6)
        {
            return false;
        }

        uint nameLength = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (nameLength > (uint)(data.Length - 6) || !NbdStrings.TryDecode(data.Slice(4, (int)nameLength), out string name))
        {
            return false;
        }

        var rest = data[(4 + (int)nameLength)..];
        int count = BinaryPrimitives.ReadUInt16BigEndian(rest);
        rest = rest[2..];
        if (rest.Length != 2 * count)
        {
            return false;
        }

        var requests = new NbdInfoType[count];
        for (int i = 0; i < count; i++)
        {
            requests[i] = (NbdInfoType)BinaryPrimitives.ReadUInt16BigEndian(rest[(2 * i)..]);
        }

        value = new ExportInfoRequest(name, requests);
        return true;
    }

    public int Write(Span<byte> destination)
    {
        int n = NbdStrings.Encode(ExportName, destination[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)n);
        int at = 4 + n;
        BinaryPrimitives.WriteUInt16BigEndian(destination[at..], (ushort)Requests.Count);
        at += 2;
        foreach (var r in Requests)
        {
            BinaryPrimitives.WriteUInt16BigEndian(destination[at..], (ushort)r);
            at += 2;
        }

        return at;
    }
}
