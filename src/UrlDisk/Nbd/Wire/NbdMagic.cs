namespace UrlDisk.Nbd.Wire;

/// <summary>The magic numbers that open each NBD message (doc/proto.md of the NBD project).</summary>
internal static class NbdMagic
{
    /// <summary>"NBDMAGIC": the first eight bytes the server sends.</summary>
    public const ulong InitPasswd = 0x4e42444d41474943;

    /// <summary>"IHAVEOPT": follows <see cref="InitPasswd"/> in newstyle and opens every option request.</summary>
    public const ulong IHaveOpt = 0x49484156454F5054;

    public const ulong OptionReply = 0x3e889045565a9;

    public const uint Request = 0x25609513;

    public const uint SimpleReply = 0x67446698;

    public const uint StructuredReply = 0x668e33ef;

    /// <summary>Default TCP port.</summary>
    public const int Port = 10809;
}
