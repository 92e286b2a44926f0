using UrlDisk.Nbd.Wire;

namespace UrlDisk.Tests.Nbd;

public class TransmissionCodecTests
{
    [Fact]
    public void Compact_request_bytes()
    {
        string hex = "25609513" + "0001" + "0001" + "0102030405060708" + "0000000000001000" + "00000200";
        var wire = Convert.FromHexString(hex);
        Assert.True(NbdRequest.TryRead(wire, out var r));
        Assert.Equal(new NbdRequest(NbdCommandFlags.Fua, NbdCommand.Write, 0x0102030405060708, 4096, 512), r);

        var back = new byte[NbdRequest.CompactSize];
        r.Write(back);
        Assert.Equal(wire, back);
        Assert.False(NbdRequest.TryRead(wire.AsSpan(0, 27), out _));
    }

    [Fact]
    public void An_extended_request_is_refused_as_out_of_step()
    {
        // NBD_OPT_EXTENDED_HEADERS is never negotiated, so its 32-byte header's magic is a stream out of step.
        var wire = Convert.FromHexString("21E41C71" + "0000" + "0007" + "0000000000000007" + "0000000000000000" + "0000000100000000");
        Assert.Throws<NbdProtocolException>(() => NbdRequest.TryRead(wire, out _));
    }

    [Fact]
    public void Garbage_request_throws()
        => Assert.Throws<NbdProtocolException>(() => NbdRequest.TryRead(new byte[28], out _));

    [Fact]
    public void Simple_reply_bytes()
    {
        var buf = new byte[SimpleReplyHeader.Size];
        new SimpleReplyHeader(NbdError.Perm, 0xabcdef).Write(buf);
        Assert.Equal(Convert.FromHexString("67446698" + "00000001" + "0000000000ABCDEF"), buf);
        Assert.True(SimpleReplyHeader.TryRead(buf, out var r));
        Assert.Equal(NbdError.Perm, r.Error);
        Assert.Equal(0xabcdeful, r.Cookie);
    }

    [Fact]
    public void Structured_reply_header_bytes()
    {
        var buf = new byte[StructuredReplyHeader.Size];
        new StructuredReplyHeader(NbdReplyFlags.Done, NbdReplyChunkType.OffsetHole, 9, OffsetHoleChunk.Size).Write(buf);
        Assert.Equal(Convert.FromHexString("668E33EF" + "0001" + "0002" + "0000000000000009" + "0000000C"), buf);
        Assert.True(StructuredReplyHeader.TryRead(buf, out var h));
        Assert.True(h.IsDone);
        Assert.False(h.IsError);
        Assert.False(StructuredReplyHeader.TryRead(buf.AsSpan(0, 19), out _));
    }

    [Fact]
    public void Chunk_payloads_bytes()
    {
        var hole = new byte[OffsetHoleChunk.Size];
        new OffsetHoleChunk(0x10000, 0x2000).Write(hole);
        Assert.Equal(Convert.FromHexString("0000000000010000" + "00002000"), hole);
        Assert.True(OffsetHoleChunk.TryRead(hole, out var h));
        Assert.Equal(0x2000u, h.HoleSize);

        var data = new byte[OffsetDataChunk.Size];
        new OffsetDataChunk(512).Write(data);
        Assert.Equal(Convert.FromHexString("0000000000000200"), data);
        Assert.True(OffsetDataChunk.TryRead(data, out var d));
        Assert.Equal(512ul, d.Offset);

        var desc = new byte[BlockStatusDescriptor.Size];
        new BlockStatusDescriptor(65536, NbdAllocationState.Hole | NbdAllocationState.Zero).Write(desc);
        Assert.Equal(Convert.FromHexString("00010000" + "00000003"), desc);
        Assert.True(BlockStatusDescriptor.TryRead(desc, out var bs));
        Assert.Equal(NbdAllocationState.Hole | NbdAllocationState.Zero, bs.State);
    }

    [Fact]
    public void Error_chunk_bytes()
    {
        var e = new ErrorChunk(NbdError.Invalid, "past end");
        var buf = new byte[e.EncodedLength];
        Assert.Equal(14, e.Write(buf));
        Assert.Equal([0, 0, 0, 22, 0, 8, .. "past end"u8], buf);
        Assert.True(ErrorChunk.TryRead(buf, out var back));
        Assert.Equal(e, back);
        Assert.False(ErrorChunk.TryRead(buf.AsSpan(0, 10), out _));
    }
}
