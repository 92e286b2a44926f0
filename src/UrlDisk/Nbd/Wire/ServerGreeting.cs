using System.Buffers.Binary;

namespace UrlDisk.Nbd.Wire;

/// <summary>The server's first message in newstyle: NBDMAGIC, IHAVEOPT, 16-bit handshake flags.</summary>
internal readonly record struct ServerGreeting(NbdHandshakeFlags Flags)
{
    public const int Size = 18;

    /// <summary>False when fewer than <see cref="Size"/> bytes are there; throws when the magics are wrong.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ServerGreeting value)
    {
        value = default;
        if (source.Length < Size)
        {
            return false;
        }

        if (BinaryPrimitives.ReadUInt64BigEndian(source) != NbdMagic.InitPasswd || BinaryPrimitives.ReadUInt64BigEndian(source[8..]) != NbdMagic.IHaveOpt)
        {
            throw new NbdProtocolException("not a newstyle NBD greeting (NBDMAGIC, IHAVEOPT expected)");
        }

        value = new ServerGreeting((NbdHandshakeFlags)BinaryPrimitives.ReadUInt16BigEndian(source[16..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.InitPasswd);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], NbdMagic.IHaveOpt);
        BinaryPrimitives.WriteUInt16BigEndian(destination[16..], (ushort)Flags);
    }
}

/// <summary>The client's answer to the greeting: 32-bit client flags.</summary>
internal readonly record struct ClientHello(NbdClientFlags Flags)
{
    public const int Size = 4;

    public const NbdClientFlags Known = NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes;

    public bool HasUnknownFlags => (Flags & ~Known) != 0;

    public static bool TryRead(ReadOnlySpan<byte> source, out ClientHello value)
    {
        value = default;
        if (source.Length < Size)
        {
            return false;
        }

        value = new ClientHello((NbdClientFlags)BinaryPrimitives.ReadUInt32BigEndian(source));
        return true;
    }

    public void Write(Span<byte> destination) => BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)Flags);
}
