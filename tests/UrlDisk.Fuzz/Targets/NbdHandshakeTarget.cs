using UrlDisk.Nbd.Wire;

namespace UrlDisk.Fuzz.Targets;

/// <summary>Every handshake codec (client and server side) over the same bytes.</summary>
public sealed class NbdHandshakeTarget : IFuzzTarget
{
    public string Name => "nbd-handshake";

    public bool IsExpected(Exception error) => error is NbdProtocolException;

    public void Run(ReadOnlySpan<byte> input)
    {
        ServerGreeting.TryRead(input, out _);
        ClientHello.TryRead(input, out _);
        OptionRequestHeader.TryRead(input, out _);
        OptionReplyHeader.TryRead(input, out _);
        ExportNameReply.TryRead(input, noZeroes: true, out _);
        ExportNameReply.TryRead(input, noZeroes: false, out _);
        InfoExport.TryRead(input, out _);
        InfoBlockSize.TryRead(input, out _);
        InfoText.TryRead(input, out _);
        ServerEntry.TryRead(input, out _);
        MetaContextEntry.TryRead(input, out _);
        NbdStrings.TryDecode(input, out _);
        if (ExportInfoRequest.TryRead(input, out var info) && info is null)
        {
            throw new InvalidOperationException("ExportInfoRequest.TryRead returned true without a value");
        }

        if (MetaContextRequest.TryRead(input, out var meta) && meta is null)
        {
            throw new InvalidOperationException("MetaContextRequest.TryRead returned true without a value");
        }
    }
}
