using UrlDisk.Formats.Qcow2;

namespace UrlDisk.Cli.Serve;

/// <summary>
/// For <c>qemu:allocation-depth</c>: a range no layer of a qcow2 chain holds falls through to the chain's bottom. When
/// that bottom is a raw file, QEMU counts the range as allocated there (a hole in a file is still the file's); when it is
/// a format with its own allocation (qcow2 without a backing file), the range is unallocated (depth 0).
/// </summary>
internal static class ChainBottom
{
    public static async Task<bool> IsRawAsync(IBlockDevice device, CancellationToken ct)
    {
        while (device is ServeFilter && device.Info.Child is { } inner)
        {
            device = inner;
        }

        for (int depth = 0; depth < 100 && device is Qcow2Image q; depth++)
        {
            if (await q.GetBackingAsync(ct).ConfigureAwait(false) is not { } backing)
            {
                return false;
            }

            device = backing;
        }

        return device.Info.Driver == "raw";
    }
}
