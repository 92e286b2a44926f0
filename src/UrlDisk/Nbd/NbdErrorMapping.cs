using UrlDisk.Nbd.Wire;

namespace UrlDisk.Nbd;

/// <summary>Which NBD error a device exception becomes.</summary>
internal static class NbdErrorMapping
{
    private const int Efbig = 27;
    private const int Enospc = 28;
    private const int Edquot = 122;

    public static NbdError ToNbdError(Exception e) => e switch
    {
        ReadOnlyDeviceException or UnauthorizedAccessException => NbdError.Perm,
        NotSupportedException => NbdError.NotSupported,
        ArgumentException or OptionException => NbdError.Invalid,
        OverflowException => NbdError.Overflow,
        OutOfMemoryException or InsufficientMemoryException => NbdError.NoMem,
        OperationCanceledException => NbdError.Shutdown,

        // On Unix an IOException from the OS carries the errno as its HResult.
        IOException io when io.HResult is Enospc or Edquot or Efbig => NbdError.NoSpace,
        _ => NbdError.IO,
    };
}
