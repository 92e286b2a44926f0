using System.Buffers.Binary;
using System.Text;

namespace UrlDisk.Sources.Tftp;

internal enum TftpOpcode : ushort
{
    ReadRequest = 1,
    WriteRequest = 2,
    Data = 3,
    Ack = 4,
    Error = 5,

    /// <summary>Option acknowledgement (RFC 2347).</summary>
    OptionAck = 6,
}

/// <summary>
/// A decoded TFTP packet (RFC 1350, options per RFC 2347). <see cref="Data"/> points into the datagram it was read from.
/// </summary>
internal readonly ref struct TftpPacket
{
    public TftpOpcode Opcode { get; init; }

    /// <summary>Block number of DATA and ACK.</summary>
    public ushort Block { get; init; }

    public ReadOnlySpan<byte> Data { get; init; }

    public ushort ErrorCode { get; init; }
    public string? ErrorMessage { get; init; }

    /// <summary>Options of an OACK (or RRQ), names lower-cased.</summary>
    public Dictionary<string, string>? Options { get; init; }

    /// <summary>Name and mode of a RRQ/WRQ.</summary>
    public string? FileName { get; init; }
    public string? Mode { get; init; }
}

/// <summary>Pure encoders and decoder for TFTP packets. No I/O.</summary>
internal static class TftpCodec
{
    /// <summary>Error code 8 of RFC 2347: the client's options were refused.</summary>
    public const ushort OptionsRefused = 8;

    /// <summary>Writes a RRQ: opcode, name NUL, mode NUL, then name NUL value NUL per option. Returns the length.</summary>
    public static int WriteReadRequest(Span<byte> destination, string fileName, IEnumerable<KeyValuePair<string, string>> options)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)TftpOpcode.ReadRequest);
        int n = 2;
        n += WriteString(destination[n..], fileName);
        n += WriteString(destination[n..], "octet");
        foreach (var (k, v) in options)
        {
            n += WriteString(destination[n..], k);
            n += WriteString(destination[n..], v);
        }

        return n;
    }

    public static int WriteAck(Span<byte> destination, ushort block)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)TftpOpcode.Ack);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], block);
        return 4;
    }

    public static int WriteData(Span<byte> destination, ushort block, ReadOnlySpan<byte> data)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)TftpOpcode.Data);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], block);
        data.CopyTo(destination[4..]);
        return 4 + data.Length;
    }

    public static int WriteError(Span<byte> destination, ushort code, string message)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)TftpOpcode.Error);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], code);
        return 4 + WriteString(destination[4..], message);
    }

    public static int WriteOptionAck(Span<byte> destination, IEnumerable<KeyValuePair<string, string>> options)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)TftpOpcode.OptionAck);
        int n = 2;
        foreach (var (k, v) in options)
        {
            n += WriteString(destination[n..], k);
            n += WriteString(destination[n..], v);
        }

        return n;
    }

    /// <summary>Decodes one datagram; false when it is too short, has an unknown opcode or unterminated strings.</summary>
    public static bool TryRead(ReadOnlySpan<byte> datagram, out TftpPacket packet)
    {
        packet = default;
        if (datagram.Length < 2)
        {
            return false;
        }

        var op = (TftpOpcode)BinaryPrimitives.ReadUInt16BigEndian(datagram);
        var rest = datagram[2..];
        switch (op)
        {
            case TftpOpcode.Data:
            case TftpOpcode.Ack:
                if (rest.Length < 2 || (op == TftpOpcode.Ack && rest.Length != 2))
                {
                    return false;
                }

                packet = new TftpPacket { Opcode = op, Block = BinaryPrimitives.ReadUInt16BigEndian(rest), Data = rest[2..] };
                return true;
            case TftpOpcode.Error:
                if (rest.Length < 3)
                {
                    return false;
                }

                // Some servers omit the final NUL; accept the message up to the end then.
                var msg = rest[2..];
                int nul = msg.IndexOf((byte)0);
                packet = new TftpPacket
                {
                    Opcode = op,
                    ErrorCode = BinaryPrimitives.ReadUInt16BigEndian(rest),
                    ErrorMessage = Encoding.UTF8.GetString(nul < 0 ? msg : msg[..nul]),
                };
                return true;
            case TftpOpcode.OptionAck:
                if (!TryReadOptions(rest, out var options))
                {
                    return false;
                }

                packet = new TftpPacket { Opcode = op, Options = options };
                return true;
            case TftpOpcode.ReadRequest:
            case TftpOpcode.WriteRequest:
                if (!TryReadString(ref rest, out var name) || !TryReadString(ref rest, out var mode) || !TryReadOptions(rest, out var requested))
                {
                    return false;
                }

                packet = new TftpPacket { Opcode = op, FileName = name, Mode = mode.ToLowerInvariant(), Options = requested };
                return true;
            default:
                return false;
        }
    }

    private static bool TryReadOptions(ReadOnlySpan<byte> s, out Dictionary<string, string> options)
    {
        options = new Dictionary<string, string>(StringComparer.Ordinal);
        while (s.Length > 0)
        {
            if (!TryReadString(ref s, out var name) || !TryReadString(ref s, out var value))
            {
                return false;
            }

            options[name.ToLowerInvariant()] = value;
        }

        return true;
    }

    private static bool TryReadString(ref ReadOnlySpan<byte> s, out string value)
    {
        int nul = s.IndexOf((byte)0);
        if (nul < 0)
        {
            value = "";
            return false;
        }

        value = Encoding.UTF8.GetString(s[..nul]);
        s = s[(nul + 1)..];
        return true;
    }

    private static int WriteString(Span<byte> destination, string s)
    {
        int n = Encoding.UTF8.GetBytes(s, destination);
        destination[n] = 0;
        return n + 1;
    }
}
