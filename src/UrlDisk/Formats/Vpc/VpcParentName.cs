using System.Text;

namespace UrlDisk.Formats.Vpc;

/// <summary>
/// The parent of a differencing VHD as a name to open: the relative Windows path (locator "W2ru") turned into a
/// '/'-separated name resolved against the child's location, as qcow2 backing names are; else the parent's
/// file name from the header, beside the child. Absolute Windows paths ("W2ku") name another machine's disk.
/// </summary>
internal static class VpcParentName
{
    private const int MaxLocatorBytes = 64 * 1024;

    public static async ValueTask<string> FindAsync(IBlockDevice file, VpcDynamicHeader header, CancellationToken cancellationToken)
    {
        foreach (var locator in header.Locators.Where(l => l.PlatformCode == "W2ru"))
        {
            if (locator.DataLength is 0 or > MaxLocatorBytes || locator.DataOffset > (ulong)file.Length || locator.DataLength > (ulong)file.Length - locator.DataOffset)
            {
                throw new ImageFormatException($"vpc: parent locator W2ru: {locator.DataLength} bytes at offset {locator.DataOffset} are outside the file or over {MaxLocatorBytes} bytes");
            }

            var bytes = new byte[locator.DataLength];
            await file.ReadAsync((long)locator.DataOffset, bytes, cancellationToken).ConfigureAwait(false);
            string path = Encoding.Unicode.GetString(bytes).TrimEnd('\0').Replace('\\', '/');
            while (path.StartsWith("./", StringComparison.Ordinal))
            {
                path = path[2..];
            }

            if (path.Length > 0)
            {
                return path;
            }
        }

        string name = header.ParentName.Replace('\\', '/');
        name = name[(name.LastIndexOf('/') + 1)..];
        return name.Length > 0
            ? name
            : throw new ImageFormatException("vpc: the differencing disk names no parent (no W2ru locator and no parent name)");
    }
}
