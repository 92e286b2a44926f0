using UrlDisk.Nbd.Wire;

namespace UrlDisk.Fuzz.Targets;

/// <summary>Requests and every reply header and chunk, read and written back.</summary>
public sealed class NbdTransmissionTarget : IFuzzTarget
{
    public string Name => "nbd-transmission";

    public bool IsExpected(Exception error) => error is NbdProtocolException;

    public void Run(ReadOnlySpan<byte> input)
    {
        try
        {
            if (NbdRequest.TryRead(input, out var request))
            {
                var back = new byte[NbdRequest.CompactSize];
                request.Write(back);
            }
        }
        catch (NbdProtocolException)
        {
        }

        SimpleReplyHeader.TryRead(input, out _);
        StructuredReplyHeader.TryRead(input, out _);
        OffsetDataChunk.TryRead(input, out _);
        OffsetHoleChunk.TryRead(input, out _);
        BlockStatusDescriptor.TryRead(input, out _);
        ErrorChunk.TryRead(input, out _);
    }
}
