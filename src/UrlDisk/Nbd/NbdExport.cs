using UrlDisk.Nbd.Wire;

namespace UrlDisk.Nbd;

/// <summary>The one export a server offers: its device and what the transmission flags promise about it.</summary>
internal sealed class NbdExport
{
    public NbdExport(IBlockDevice device, NbdServerOptions options)
    {
        Device = device;
        Options = options;
        var info = device.Info;
        Writable = info.CanWrite && !options.ReadOnly;
        MinimumBlockSize = (uint)Math.Clamp(info.MinimumBlockSize, 1, 64 * 1024);
        PreferredBlockSize = Math.Max(MinimumBlockSize, (uint)Math.Clamp(info.PreferredBlockSize, 512, 2 << 20));
        // qemu refuses a minimum that is not a power of two or does not divide the size.
        if (!uint.IsPow2(MinimumBlockSize) || device.Length % MinimumBlockSize != 0)
        {
            MinimumBlockSize = 1;
        }

        if (!uint.IsPow2(PreferredBlockSize))
        {
            PreferredBlockSize = 4096;
        }

        var flags = NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendCache;
        if (!Writable)
        {
            flags |= NbdTransmissionFlags.ReadOnly;
        }
        else
        {
            // Every writable device can write zeroes (BlockDevice falls back to writing buffers)
            // and answers FAST_ZERO with NotSupportedException when it cannot be fast.
            flags |= NbdTransmissionFlags.SendWriteZeroes | NbdTransmissionFlags.SendFastZero;
            if (info.CanFlush)
            {
                flags |= NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua;
            }

            if (info.CanTrim)
            {
                flags |= NbdTransmissionFlags.SendTrim;
            }
        }

        // All connections share this one device object, so a flush on one covers writes made on any:
        // multi-conn is safe whenever more than one client may connect.
        if (options.MaxConnections != 1)
        {
            flags |= NbdTransmissionFlags.CanMultiConn;
        }

        BaseFlags = flags;
        Share = ShareOfOne;
    }

    private int _transmitting;

    /// <summary>
    /// The payload bytes one connection may hold in flight now: the server's budget split evenly between the clients
    /// in transmission, and at most the per-connection limit. Asked at every request, so a client that arrives shrinks
    /// the others' shares while its own is never taken by them.
    /// </summary>
    public Func<long> Share { get; }

    private long ShareOfOne()
        => Math.Min(Options.MaxInFlightBytes, Options.MaxServerInFlightBytes / Math.Max(1, Volatile.Read(ref _transmitting)));

    public void EnterTransmission() => Interlocked.Increment(ref _transmitting);

    public void LeaveTransmission() => Interlocked.Decrement(ref _transmitting);

    public IBlockDevice Device { get; }

    public NbdServerOptions Options { get; }

    public string Name => Options.ExportName;

    public bool Writable { get; }

    public uint MinimumBlockSize { get; }

    public uint PreferredBlockSize { get; }

    public uint MaximumBlockSize => NbdServerOptions.MaxPayload;

    /// <summary>Flags without SEND_DF, which depends on whether the connection negotiated structured replies.</summary>
    public NbdTransmissionFlags BaseFlags { get; }

    public NbdTransmissionFlags FlagsFor(bool structuredReplies)
        => structuredReplies ? BaseFlags | NbdTransmissionFlags.SendDf : BaseFlags;

    public const string BaseAllocation = "base:allocation";

    /// <summary>qemu-nbd's context (-A): per extent, 0 unallocated, 1 in the image itself, N+1 in its N-th backing file.</summary>
    public const string AllocationDepth = "qemu:allocation-depth";
}
