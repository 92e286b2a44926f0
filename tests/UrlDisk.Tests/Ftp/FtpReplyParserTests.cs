using System.Text;
using UrlDisk.Sources.Ftp;

namespace UrlDisk.Tests.Ftp;

public class FtpReplyParserTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Reads_a_single_line_reply_and_reports_bytes_consumed()
    {
        var input = B("220 (vsFTPd 3.0.3)\r\n331 Please");
        Assert.True(FtpReplyParser.TryRead(input, out var reply, out int consumed));
        Assert.Equal(220, reply.Code);
        Assert.Equal("(vsFTPd 3.0.3)", reply.Text);
        Assert.Equal(20, consumed);
        Assert.False(FtpReplyParser.TryRead(input.AsSpan(consumed), out _, out _));
    }

    [Fact]
    public void Reads_a_multi_line_reply_only_when_its_last_line_arrived()
    {
        const string feat = "211-Features:\r\n EPSV\r\n MDTM\r\n REST STREAM\r\n SIZE\r\n211 End\r\n";
        var bytes = B(feat);
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            Assert.False(FtpReplyParser.TryRead(bytes.AsSpan(0, cut), out _, out _));
        }

        Assert.True(FtpReplyParser.TryRead(bytes, out var reply, out int consumed));
        Assert.Equal(211, reply.Code);
        Assert.Equal(bytes.Length, consumed);
        var features = FtpReplyParser.ParseFeat(reply.Text);
        Assert.Equal(["EPSV", "MDTM", "REST", "SIZE"], features.Keys.Order());
        Assert.Equal("STREAM", features["REST"]);
    }

    [Fact]
    public void Multi_line_reply_ignores_inner_lines_that_look_like_other_codes()
    {
        var bytes = B("230-Welcome\n230-still here\n123 not the end\n230 Login successful.\n");
        Assert.True(FtpReplyParser.TryRead(bytes, out var reply, out int consumed));
        Assert.Equal(230, reply.Code);
        Assert.Equal(bytes.Length, consumed);
        Assert.Contains("123 not the end", reply.Text, StringComparison.Ordinal);
        Assert.Equal("230 Welcome", reply.ToString());
    }

    [Theory]
    [InlineData("abc hello\r\n")]
    [InlineData("22 short\r\n")]
    [InlineData("220xno separator\r\n")]
    [InlineData("620 bad class\r\n")]
    public void Rejects_malformed_reply_lines(string line)
        => Assert.Throws<FormatException>(() => FtpReplyParser.TryRead(B(line), out _, out _));

    [Fact]
    public void Bare_code_line_is_a_reply_with_empty_text()
    {
        Assert.True(FtpReplyParser.TryRead(B("200\r\n"), out var reply, out _));
        Assert.Equal(200, reply.Code);
        Assert.Equal("", reply.Text);
    }

    [Theory]
    [InlineData("Entering Extended Passive Mode (|||6446|)", 6446)]
    [InlineData("EPSV ok (!!!65535!)", 65535)]
    public void Parses_epsv(string text, int port)
    {
        Assert.True(FtpReplyParser.TryParseEpsv(text, out int p));
        Assert.Equal(port, p);
    }

    [Theory]
    [InlineData("Entering Extended Passive Mode (|||0|)")]
    [InlineData("Entering Extended Passive Mode (|||70000|)")]
    [InlineData("Entering Extended Passive Mode (||6446|)")]
    [InlineData("Entering Extended Passive Mode (|||6446)")]
    [InlineData("no parentheses")]
    public void Rejects_bad_epsv(string text) => Assert.False(FtpReplyParser.TryParseEpsv(text, out _));

    [Theory]
    [InlineData("Entering Passive Mode (127,0,0,1,195,80).", 50000)]
    [InlineData("Entering Passive Mode 10,1,2,3,0,21", 21)]
    public void Parses_pasv(string text, int port)
    {
        Assert.True(FtpReplyParser.TryParsePasv(text, out var address, out int p));
        Assert.Equal(port, p);
        Assert.Equal(4, address.Length);
    }

    [Theory]
    [InlineData("Entering Passive Mode (127,0,0,1,256,80)")]
    [InlineData("Entering Passive Mode (127,0,0,1,195)")]
    [InlineData("Entering Passive Mode (127,0,0,1,0,0)")]
    [InlineData("nothing")]
    public void Rejects_bad_pasv(string text) => Assert.False(FtpReplyParser.TryParsePasv(text, out _, out _));

    [Fact]
    public void Parses_mdtm_with_and_without_fraction()
    {
        Assert.True(FtpReplyParser.TryParseMdtm("20261125131415", out var t));
        Assert.Equal(new DateTimeOffset(2026, 11, 25, 13, 14, 15, TimeSpan.Zero), t);
        Assert.True(FtpReplyParser.TryParseMdtm("19980615100045.5", out t));
        Assert.Equal(500, t.Millisecond);
    }

    [Theory]
    [InlineData("2026112513141")]
    [InlineData("20261325131415")]
    [InlineData("20260230131415")]
    [InlineData("20261125131415.")]
    [InlineData("2026112513141x")]
    public void Rejects_bad_mdtm(string text) => Assert.False(FtpReplyParser.TryParseMdtm(text, out _));

    [Theory]
    [InlineData("1048576", 1048576L)]
    [InlineData(" 0 ", 0L)]
    public void Parses_size(string text, long size)
    {
        Assert.True(FtpReplyParser.TryParseSize(text, out long s));
        Assert.Equal(size, s);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("12 bytes")]
    public void Rejects_bad_size(string text) => Assert.False(FtpReplyParser.TryParseSize(text, out _));
}
