using UrlDisk.Sources.Tftp;

namespace UrlDisk.Fuzz.Targets;

/// <summary>The TFTP datagram decoder (DATA, ACK, ERROR, OACK, RRQ), and re-encoding what it read.</summary>
public sealed class TftpPacketTarget : IFuzzTarget
{
    public string Name => "tftp-packet";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (!TftpCodec.TryRead(input, out var packet))
        {
            return;
        }

        var buffer = new byte[input.Length + 64];
        switch (packet.Opcode)
        {
            case TftpOpcode.Data when packet.Data.Length > input.Length:
                throw new InvalidOperationException($"DATA of {packet.Data.Length} bytes from a {input.Length}-byte datagram");
            case TftpOpcode.Data:
                TftpCodec.WriteData(buffer, packet.Block, packet.Data);
                break;
            case TftpOpcode.Ack:
                TftpCodec.WriteAck(buffer, packet.Block);
                break;
            case TftpOpcode.OptionAck when packet.Options is null:
                throw new InvalidOperationException("OACK without options");
            case TftpOpcode.OptionAck:
                TftpCodec.WriteOptionAck(new byte[Math.Max(buffer.Length, packet.Options.Sum(o => (o.Key.Length + o.Value.Length) * 3 + 2) + 2)], packet.Options);
                break;
        }
    }
}
