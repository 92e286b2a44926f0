using System.Text;
using UrlDisk.Sources.Ftp;

namespace UrlDisk.Fuzz.Targets;

/// <summary>The FTP control-channel reply reader and the EPSV, PASV, MDTM, SIZE and FEAT payload parsers.</summary>
public sealed class FtpReplyTarget : IFuzzTarget
{
    public string Name => "ftp-reply";

    /// <summary>The reply reader documents FormatException for a malformed first line.</summary>
    public bool IsExpected(Exception error) => error is FormatException or UrlDiskException;

    public void Run(ReadOnlySpan<byte> input)
    {
        var rest = input;
        while (FtpReplyParser.TryRead(rest, out var reply, out int consumed))
        {
            if (consumed <= 0 || consumed > rest.Length)
            {
                throw new InvalidOperationException($"consumed {consumed} of {rest.Length} bytes");
            }

            rest = rest[consumed..];
            string text = reply.Text;
            FtpReplyParser.TryParseEpsv(text, out _);
            FtpReplyParser.TryParsePasv(text, out _, out _);
            FtpReplyParser.TryParseMdtm(text, out _);
            if (FtpReplyParser.TryParseSize(text, out long size) && size < 0)
            {
                throw new InvalidOperationException($"SIZE parsed as {size}");
            }

            FtpReplyParser.ParseFeat(text);
        }

        string raw = Encoding.Latin1.GetString(input);
        FtpReplyParser.TryParseEpsv(raw, out _);
        FtpReplyParser.TryParsePasv(raw, out _, out _);
        FtpReplyParser.TryParseMdtm(raw, out _);
        FtpReplyParser.TryParseSize(raw, out _);
        FtpReplyParser.ParseFeat(raw);
    }
}
