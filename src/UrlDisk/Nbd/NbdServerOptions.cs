namespace UrlDisk.Nbd;

/// <summary>How an <see cref="NbdServer"/> exports its device.</summary>
public sealed record NbdServerOptions
{
    /// <summary>Largest READ or WRITE payload accepted (and advertised as the maximum block size).</summary>
    public const int MaxPayload = 32 << 20;

    /// <summary>Name clients ask for (qemu-nbd's <c>--export-name</c>); empty is the default export.</summary>
    public string ExportName { get; init; } = "";

    /// <summary>Shown by <c>nbdinfo</c> and in NBD_OPT_LIST.</summary>
    public string? Description { get; init; }

    /// <summary>Refuse writes even if the device could take them.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Clients served at once (qemu-nbd's <c>--shared</c>); 0 means up to <see cref="ConnectionCap"/>.</summary>
    public int MaxConnections { get; init; } = 1;

    /// <summary>Upper bound for <see cref="MaxConnections"/> = 0.</summary>
    public const int ConnectionCap = 1024;

    /// <summary>Keep serving after the last client leaves (qemu-nbd's <c>--persistent</c>); otherwise stop then.</summary>
    public bool Persistent { get; init; }

    /// <summary>Requests one connection may have in flight before the server stops reading from it.</summary>
    public int MaxInFlightRequests { get; init; } = 64;

    /// <summary>READ/WRITE payload bytes one connection may hold in flight; a request larger than that runs alone.</summary>
    public long MaxInFlightBytes { get; init; } = 16 << 20;

    /// <summary>
    /// READ/WRITE payload bytes all connections together may hold in flight: each client in transmission gets an even
    /// share (at most <see cref="MaxInFlightBytes"/>); a request larger than its share runs alone.
    /// </summary>
    public long MaxServerInFlightBytes { get; init; } = 4 << 20;

    /// <summary>Longest option data accepted during the handshake; longer closes the connection.</summary>
    public int MaxOptionLength { get; init; } = 64 * 1024;

    /// <summary>A client that has not finished the handshake by then is dropped, so it cannot hold a slot forever.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A connection whose replies make no progress for this long (the client stopped reading) is dropped.</summary>
    public TimeSpan ReplyTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>On shutdown, how long requests in flight may take before their connection is cut.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Offer the <c>qemu:allocation-depth</c> metadata context (qemu-nbd's <c>-A</c>).</summary>
    internal bool AllocationDepth { get; init; }

    /// <summary>
    /// For <c>qemu:allocation-depth</c>: the bottom of the device's backing chain is a raw file, so a hole reported at
    /// depth N is allocated in that file (N+1), not unallocated (0), as QEMU counts it.
    /// </summary>
    internal bool ChainEndsInRawFile { get; init; }

    /// <summary>
    /// The server's certificate (with its private key) for NBD STARTTLS; when set, every client must start TLS before
    /// anything else (others get NBD_REP_ERR_TLS_REQD), as qemu-nbd with <c>--tls-creds</c>.
    /// </summary>
    internal System.Security.Cryptography.X509Certificates.X509Certificate2? TlsCertificate { get; init; }

    /// <summary>Where connection-level problems are reported (one line each); null to stay quiet.</summary>
    public TextWriter? Log { get; init; }
}
