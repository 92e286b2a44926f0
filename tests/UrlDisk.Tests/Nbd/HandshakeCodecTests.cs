using UrlDisk.Nbd.Wire;

namespace UrlDisk.Tests.Nbd;

public class HandshakeCodecTests
{
    [Fact]
    public void Greeting_is_NBDMAGIC_IHAVEOPT_and_flags()
    {
        var buf = new byte[ServerGreeting.Size];
        new ServerGreeting(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes).Write(buf);
        Assert.Equal("NBDMAGICIHAVEOPT"u8.ToArray(), buf[..16]);
        Assert.Equal(new byte[] { 0, 3 }, buf[16..]);

        Assert.True(ServerGreeting.TryRead(buf, out var g));
        Assert.Equal(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes, g.Flags);
        Assert.False(ServerGreeting.TryRead(buf.AsSpan(0, 17), out _));
        buf[3] ^= 0xff;
        Assert.Throws<NbdProtocolException>(() => ServerGreeting.TryRead(buf, out _));
    }

    [Fact]
    public void Client_hello_reports_unknown_flags()
    {
        Assert.True(ClientHello.TryRead([0, 0, 0, 3], out var known));
        Assert.False(known.HasUnknownFlags);
        Assert.True(ClientHello.TryRead([0, 0, 0, 4], out var unknown));
        Assert.True(unknown.HasUnknownFlags);
        Assert.False(ClientHello.TryRead([0, 0, 0], out _));
    }

    [Fact]
    public void Option_request_header_bytes()
    {
        byte[] wire = [.. "IHAVEOPT"u8, 0, 0, 0, 7, 0, 0, 0x01, 0x02];
        Assert.True(OptionRequestHeader.TryRead(wire, out var h));
        Assert.Equal(NbdOption.Go, h.Option);
        Assert.Equal(0x102u, h.Length);

        var back = new byte[OptionRequestHeader.Size];
        h.Write(back);
        Assert.Equal(wire, back);

        Assert.False(OptionRequestHeader.TryRead(wire.AsSpan(0, 15), out _));
        wire[0] = (byte)'X';
        Assert.Throws<NbdProtocolException>(() => OptionRequestHeader.TryRead(wire, out _));
    }

    [Fact]
    public void Option_reply_header_bytes()
    {
        var buf = new byte[OptionReplyHeader.Size];
        new OptionReplyHeader(NbdOption.List, NbdOptionReplyType.ErrUnsup, 5).Write(buf);
        Assert.Equal(Convert.FromHexString("0003E889045565A9" + "00000003" + "80000001" + "00000005"), buf);
        Assert.True(OptionReplyHeader.TryRead(buf, out var r));
        Assert.True(r.IsError);
        Assert.Equal(NbdOptionReplyType.ErrUnsup, r.Type);
    }

    [Fact]
    public void Export_name_reply_pads_unless_no_zeroes()
    {
        var padded = new byte[ExportNameReply.PaddedSize];
        padded.AsSpan().Fill(0xee);
        new ExportNameReply(0x1_0000_0000, NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.ReadOnly, NoZeroes: false).Write(padded);
        Assert.Equal(Convert.FromHexString("0000000100000000" + "0003"), padded[..10]);
        Assert.All(padded[10..], b => Assert.Equal(0, b));

        var shortReply = new ExportNameReply(512, NbdTransmissionFlags.HasFlags, NoZeroes: true);
        Assert.Equal(10, shortReply.EncodedLength);
        var buf = new byte[10];
        shortReply.Write(buf);
        Assert.True(ExportNameReply.TryRead(buf, noZeroes: true, out var back));
        Assert.Equal(512ul, back.ExportSize);
        Assert.False(ExportNameReply.TryRead(buf, noZeroes: false, out _));
    }

    [Fact]
    public void Info_export_and_block_size_bytes()
    {
        var e = new byte[InfoExport.Size];
        new InfoExport(1 << 20, NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush).Write(e);
        Assert.Equal(Convert.FromHexString("0000" + "0000000000100000" + "0005"), e);
        Assert.True(InfoExport.TryRead(e, out var ie));
        Assert.Equal(1ul << 20, ie.ExportSize);

        var b = new byte[InfoBlockSize.Size];
        new InfoBlockSize(1, 4096, 32 << 20).Write(b);
        Assert.Equal(Convert.FromHexString("0003" + "00000001" + "00001000" + "02000000"), b);
        Assert.True(InfoBlockSize.TryRead(b, out var ib));
        Assert.Equal(new InfoBlockSize(1, 4096, 32 << 20), ib);
        Assert.False(InfoBlockSize.TryRead(e, out _));
    }

    [Fact]
    public void Info_text_carries_type_and_utf8()
    {
        var t = new InfoText(NbdInfoType.Description, "dísk");
        var buf = new byte[t.EncodedLength];
        Assert.Equal(buf.Length, t.Write(buf));
        Assert.Equal(new byte[] { 0, 2, (byte)'d', 0xc3, 0xad, (byte)'s', (byte)'k' }, buf);
        Assert.True(InfoText.TryRead(buf, out var back));
        Assert.Equal(t, back);
        Assert.False(InfoText.TryRead([0, 1, 0xff], out _));
    }

    [Fact]
    public void Go_data_parses_name_and_requests()
    {
        byte[] data = [0, 0, 0, 3, (byte)'a', (byte)'b', (byte)'c', 0, 2, 0, 3, 0, 1];
        Assert.True(ExportInfoRequest.TryRead(data, out var go));
        Assert.Equal("abc", go!.ExportName);
        Assert.Equal([NbdInfoType.BlockSize, NbdInfoType.Name], go.Requests);

        var back = new byte[go.EncodedLength];
        Assert.Equal(data.Length, go.Write(back));
        Assert.Equal(data, back);
    }

    [Theory]
    [InlineData("")]
    [InlineData("00000000")]
    [InlineData("FFFFFFFF0000")]
    [InlineData("00000001610001")]
    [InlineData("0000000161000100030000")]
    [InlineData("000000016100000000")]
    [InlineData("00000001000000")]
    public void Go_data_rejects_malformed(string hex)
        => Assert.False(ExportInfoRequest.TryRead(Convert.FromHexString(hex), out _));

    [Fact]
    public void Meta_context_data_round_trips()
    {
        var req = new MetaContextRequest("", ["base:allocation", "qemu:"]);
        var buf = new byte[req.EncodedLength];
        Assert.Equal(buf.Length, req.Write(buf));
        Assert.Equal(Convert.FromHexString("00000000" + "00000002" + "0000000F"), buf[..12]);
        Assert.True(MetaContextRequest.TryRead(buf, out var back));
        Assert.Equal("", back!.ExportName);
        Assert.Equal(["base:allocation", "qemu:"], back.Queries);
    }

    [Theory]
    [InlineData("00000000")]
    [InlineData("0000000000000001")]
    [InlineData("00000000FFFFFFFF")]
    [InlineData("000000000000000100000005616263")]
    [InlineData("00000000000000000000")]
    public void Meta_context_data_rejects_malformed(string hex)
        => Assert.False(MetaContextRequest.TryRead(Convert.FromHexString(hex), out _));

    [Fact]
    public void Server_and_meta_context_entries()
    {
        var s = new ServerEntry("disk", "a disk");
        var buf = new byte[s.EncodedLength];
        s.Write(buf);
        Assert.Equal([0, 0, 0, 4, .. "diska disk"u8], buf);
        Assert.True(ServerEntry.TryRead(buf, out var sb));
        Assert.Equal(s, sb);

        var m = new MetaContextEntry(1, "base:allocation");
        buf = new byte[m.EncodedLength];
        m.Write(buf);
        Assert.Equal([0, 0, 0, 1, .. "base:allocation"u8], buf);
        Assert.True(MetaContextEntry.TryRead(buf, out var mb));
        Assert.Equal(m, mb);
    }

    [Fact]
    public void Strings_with_nul_or_over_4096_bytes_are_refused()
    {
        Assert.False(NbdStrings.TryDecode([(byte)'a', 0], out _));
        Assert.False(NbdStrings.TryDecode(Enumerable.Repeat((byte)'a', 4097).ToArray(), out _));
        Assert.True(NbdStrings.TryDecode(Enumerable.Repeat((byte)'a', 4096).ToArray(), out var s));
        Assert.Equal(4096, s.Length);
        Assert.Equal(4096, NbdStrings.ByteCount(NbdStrings.Truncate(new string('é', 3000))));
        Assert.Equal(4095, NbdStrings.ByteCount(NbdStrings.Truncate("a" + new string('é', 3000))));
    }
}
