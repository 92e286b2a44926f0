using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>
/// Data of NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT:
/// u32 export name length, name, u32 query count, then each query as u32 length and string.
/// </summary>
internal sealed record MetaContextRequest(string ExportName, IReadOnlyList<string> Queries)
{
    public int EncodedLength => 8 + NbdStrings.ByteCount(ExportName) + Queries.Sum(q => 4 + NbdStrings.ByteCount(q));

    /// <summary>Parses the whole option data; false when it is malformed.</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out MetaContextRequest? value)
    {
        value = null;
        if (!TryReadString(ref data, out string name) || data.Length < 4)
        {
            return false;
        }

        uint count = BinaryPrimitives.ReadUInt32BigEndian(data);
        data = data[4..];

        // Every query takes at least 4 bytes, so the count cannot make us allocate more than the data allows.
        if (count > (uint)data.Length / 4)
        {
            return false;
        }

        var queries = new string[count];
        for (int i = 0; i < queries.Length; i++)
        {
            if (!TryReadString(ref data, out queries[i]))
            {
                return false;
            }
        }

        if (!data.IsEmpty)
        {
            return false;
        }

        value = new MetaContextRequest(name, queries);
        return true;
    }

    private static bool TryReadString(ref ReadOnlySpan<byte> data, out string value)
    {
        value = "";
        if (data.Length < 4)
        {
            return false;
        }

        uint n = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (n > (uint)(data.Length - 4) || !NbdStrings.TryDecode(data.Slice(4, (int)n), out value))
        {
            return false;
        }

        data = data[(4 + (int)n)..];
        return true;
    }

    public int Write(Span<byte> destination)
    {
        int at = WriteString(ExportName, destination);
        BinaryPrimitives.WriteUInt32BigEndian(destination[at..], (uint)Queries.Count);
        at += 4;
        foreach (var q in Queries)
        {
            at += WriteString(q, destination[at..]);
        }

        return at;
    }

    private static int WriteString(string s, Span<byte> destination)
    {
        int n = NbdStrings.Encode(s, destination[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)n);
        return 4 + n;
    }
}
