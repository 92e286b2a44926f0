using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace UrlDisk.Sources.File;

/// <summary>
/// Where a local file has data and where it has holes, from <c>lseek(SEEK_DATA/SEEK_HOLE)</c> (Linux).
/// Elsewhere, or on file systems without the calls, the whole range is reported as data.
/// </summary>
internal static partial class SparseFileMap
{
    private const int SeekData = 3;
    private const int SeekHole = 4;
    private const int Enxio = 6;

    /// <summary>More extents than this per call end the answer early (callers ask again from its end).</summary>
    private const int MaxExtents = 4096;

    public static bool IsSupported => OperatingSystem.IsLinux();

    public static IReadOnlyList<Extent> GetExtents(SafeFileHandle handle, long offset, long length)
    {
        long end = offset + length;
        if (!IsSupported)
        {
            return [new Extent(offset, length, ExtentFlags.Data)];
        }

        var extents = new List<Extent>();
        bool added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            int fd = (int)handle.DangerousGetHandle();
            long at = offset;
            while (at < end && extents.Count < MaxExtents)
            {
                long data = Seek(fd, at, SeekData);
                if (data < 0)
                {
                    // ENXIO: no data at or after 'at' (a hole to the end); anything else: the call is not usable here.
                    bool hole = data == -Enxio;
                    extents.Add(new Extent(at, end - at, hole ? ExtentFlags.Hole | ExtentFlags.Zero : ExtentFlags.Data));
                    break;
                }

                if (data > at)
                {
                    long holeEnd = Math.Min(data, end);
                    extents.Add(new Extent(at, holeEnd - at, ExtentFlags.Hole | ExtentFlags.Zero));
                    at = holeEnd;
                    if (at >= end)
                    {
                        break;
                    }
                }

                long dataEnd = Seek(fd, at, SeekHole);
                dataEnd = dataEnd <= at ? end : Math.Min(dataEnd, end);
                extents.Add(new Extent(at, dataEnd - at, ExtentFlags.Data));
                at = dataEnd;
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }

        return extents;
    }

    /// <summary>The new position, or minus the errno.</summary>
    private static long Seek(int fd, long offset, int whence)
    {
        long r = LSeek(fd, offset, whence);
        return r >= 0 ? r : -Marshal.GetLastPInvokeError();
    }

    [DllImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static extern long LSeek(int fd, long offset, int whence);
}
