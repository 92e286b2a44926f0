using System.Text;
using UrlDisk.Sources.Tftp;

namespace UrlDisk.Tests.Tftp;

public class TftpCodecTests
{
    [Fact]
    public void Read_request_with_options_has_the_rfc_2347_layout()
    {
        var buf = new byte[100];
        int n = TftpCodec.WriteReadRequest(buf, "dir/a.img", [new("blksize", "1428"), new("tsize", "0")]);
        Assert.Equal("\0\u0001dir/a.img\0octet\0blksize\u00001428\0tsize\u00000\0", Encoding.ASCII.GetString(buf, 0, n));

        Assert.True(TftpCodec.TryRead(buf.AsSpan(0, n), out var p));
        Assert.Equal(TftpOpcode.ReadRequest, p.Opcode);
        Assert.Equal("dir/a.img", p.FileName);
        Assert.Equal("octet", p.Mode);
        Assert.Equal("1428", p.Options!["blksize"]);
        Assert.Equal("0", p.Options!["tsize"]);
    }

    [Fact]
    public void Data_and_ack_round_trip_with_big_endian_block_numbers()
    {
        var buf = new byte[10];
        int n = TftpCodec.WriteData(buf, 0xABCD, [1, 2, 3]);
        Assert.Equal(new byte[] { 0, 3, 0xAB, 0xCD, 1, 2, 3 }, buf[..n]);
        Assert.True(TftpCodec.TryRead(buf.AsSpan(0, n), out var d));
        Assert.Equal(TftpOpcode.Data, d.Opcode);
        Assert.Equal(0xABCD, d.Block);
        Assert.Equal(new byte[] { 1, 2, 3 }, d.Data.ToArray());

        n = TftpCodec.WriteAck(buf, 65535);
        Assert.Equal(new byte[] { 0, 4, 0xFF, 0xFF }, buf[..n]);
        Assert.True(TftpCodec.TryRead(buf.AsSpan(0, n), out var a));
        Assert.Equal(TftpOpcode.Ack, a.Opcode);
        Assert.Equal(65535, a.Block);
    }

    [Fact]
    public void Empty_data_block_is_the_end_of_a_file_of_whole_blocks()
    {
        Assert.True(TftpCodec.TryRead(new byte[] { 0, 3, 0, 7 }, out var d));
        Assert.Equal(7, d.Block);
        Assert.True(d.Data.IsEmpty);
    }

    [Fact]
    public void Error_and_option_ack_decode()
    {
        var buf = new byte[64];
        int n = TftpCodec.WriteError(buf, 8, "blksize refused");
        Assert.True(TftpCodec.TryRead(buf.AsSpan(0, n), out var e));
        Assert.Equal(TftpOpcode.Error, e.Opcode);
        Assert.Equal(TftpCodec.OptionsRefused, e.ErrorCode);
        Assert.Equal("blksize refused", e.ErrorMessage);

        n = TftpCodec.WriteOptionAck(buf, [new("BLKSIZE", "512"), new("windowsize", "4")]);
        Assert.True(TftpCodec.TryRead(buf.AsSpan(0, n), out var o));
        Assert.Equal(TftpOpcode.OptionAck, o.Opcode);
        Assert.Equal("512", o.Options!["blksize"]);
        Assert.Equal("4", o.Options!["windowsize"]);
    }

    [Fact]
    public void Error_without_final_nul_keeps_its_message()
    {
        Assert.True(TftpCodec.TryRead("\0\u0005\0\u0001File not found"u8, out var e));
        Assert.Equal(1, e.ErrorCode);
        Assert.Equal("File not found", e.ErrorMessage);
    }

    [Theory]
    [InlineData(new byte[] { })]
    [InlineData(new byte[] { 0 })]
    [InlineData(new byte[] { 0, 9, 0, 1 })]
    [InlineData(new byte[] { 0, 3, 0 })]
    [InlineData(new byte[] { 0, 4, 0, 1, 0 })]
    [InlineData(new byte[] { 0, 6, (byte)'a', 0, (byte)'b' })]
    [InlineData(new byte[] { 0, 1, (byte)'f', 0, (byte)'o' })]
    [InlineData(new byte[] { 0, 5, 0 })]
    public void Malformed_packets_are_rejected(byte[] datagram) => Assert.False(TftpCodec.TryRead(datagram, out _));
}
