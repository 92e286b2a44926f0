using System.Runtime.InteropServices;

namespace UrlDisk.Operations;

/// <summary>
/// The large buffer a copy worker keeps for the whole copy. Its pages are asked to be transparent huge pages
/// (Linux <c>madvise(MADV_HUGEPAGE)</c>): the first touch of a fresh 4 MiB buffer otherwise takes 1024 page faults,
/// which cost a convert more CPU than its zero detection. Elsewhere, or when the kernel says no, it is an ordinary array.
/// </summary>
internal static class CopyBuffer
{
    private const int HugePage = 2 << 20;
    private const int MadviseHugePage = 14;

    public static Memory<byte> Allocate(int size)
    {
        if (!OperatingSystem.IsLinux() || size < HugePage)
        {
            return GC.AllocateUninitializedArray<byte>(size);
        }

        // Pinned, so its address stays put; one huge page more, so a huge-page-aligned window of the size fits.
        byte[] array = GC.AllocateUninitializedArray<byte>(size + HugePage, pinned: true);
        long address = Marshal.UnsafeAddrOfPinnedArrayElement(array, 0);
        int skip = (int)((HugePage - (address % HugePage)) % HugePage);
        _ = Madvise((nint)(address + skip), (nuint)size, MadviseHugePage); // advice only: a refusal leaves small pages
        return array.AsMemory(skip, size);
    }

    [DllImport("libc", EntryPoint = "madvise")]
    private static extern int Madvise(nint address, nuint length, int advice);
}
