namespace UrlDisk.Sources.Ftp;

/// <summary>One FTP reply: the three-digit code and its text (all lines of a multi-line reply, joined by '\n').</summary>
internal readonly record struct FtpReply(int Code, string Text)
{
    /// <summary>1xx: the command started; another reply follows.</summary>
    public bool IsPreliminary => Code is >= 100 and < 200;

    public bool IsSuccess => Code is >= 200 and < 300;

    public bool IsIntermediate => Code is >= 300 and < 400;

    /// <summary>4xx: trying again later may work (RFC 959 "transient negative completion").</summary>
    public bool IsTransientFailure => Code is >= 400 and < 500;

    /// <summary>The reply as a server would print it, first line only, for messages.</summary>
    public override string ToString()
    {
        int nl = Text.IndexOf('\n', StringComparison.Ordinal);
        return $"{Code} {(nl < 0 ? Text : Text[..nl])}".TrimEnd();
    }
}
