using UrlDisk.Nbd;
using UrlDisk.Nbd.Wire;

namespace UrlDisk.Tests.Nbd;

public class NbdErrorMappingTests
{
    public static TheoryData<Exception, uint> Cases => new()
    {
        { new ReadOnlyDeviceException("file"), (uint)NbdError.Perm },
        { new UnauthorizedAccessException(), (uint)NbdError.Perm },
        { new NotSupportedException(), (uint)NbdError.NotSupported },
        { new ArgumentOutOfRangeException("offset"), (uint)NbdError.Invalid },
        { new OptionException("bad"), (uint)NbdError.Invalid },
        { new OverflowException(), (uint)NbdError.Overflow },
        { new IOException("No space left on device", 28), (uint)NbdError.NoSpace },
        { new IOException("Disk quota exceeded", 122), (uint)NbdError.NoSpace },
        { new IOException("broken pipe", 32), (uint)NbdError.IO },
        { new SourceException("HTTP 500"), (uint)NbdError.IO },
        { new ImageFormatException("L2 table at 0x1000 is past the end"), (uint)NbdError.IO },
        { new OperationCanceledException(), (uint)NbdError.Shutdown },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Maps_device_exceptions_to_nbd_errors(Exception e, uint expected)
        => Assert.Equal(expected, (uint)NbdErrorMapping.ToNbdError(e));
}
