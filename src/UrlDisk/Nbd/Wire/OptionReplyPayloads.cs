using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>NBD_REP_SERVER data (one export in NBD_OPT_LIST): u32 name length, name, then a description to the end.</summary>
internal readonly record struct ServerEntry(string ExportName, string Description)
{
    public int EncodedLength => 4 + NbdStrings.ByteCount(ExportName) + NbdStrings.ByteCount(Description);

    public static bool TryRead(ReadOnlySpan<byte> data, out ServerEntry value)
    {
        value = default;
        if (data.Length < 4)
        {
            return false;
        }

        uint n = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (n > (uint)(data.Length - 4) || !NbdStrings.TryDecode(data.Slice(4, (int)n), out string name) || !NbdStrings.TryDecode(data[(4 + (int)n)..], out string description))
        {
            return false;
        }

        value = new ServerEntry(name, description);
        return true;
    }

    public int Write(Span<byte> destination)
    {
        int n = NbdStrings.Encode(ExportName, destination[4..]);
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)n);
        return 4 + n + NbdStrings.Encode(Description, destination[(4 + n)..]);
    }
}

/// <summary>NBD_REP_META_CONTEXT data: u32 context id, then the context name to the end.</summary>
internal readonly record struct MetaContextEntry(uint ContextId, string Name)
{
    public int EncodedLength => 4 + NbdStrings.ByteCount(Name);

    public static bool TryRead(ReadOnlySpan<byte> data, out MetaContextEntry value)
    {
        value = default;
        if (data.Length < 4 || !NbdStrings.TryDecode(data[4..], out string name))
        {
            return false;
        }

        value = new MetaContextEntry(BinaryPrimitives.ReadUInt32BigEndian(data), name);
        return true;
    }

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, ContextId);
        return 4 + NbdStrings.Encode(Name, destination[4..]);
    }
}
