namespace UrlDisk.Formats.Vpc;

/// <summary>
/// Which of the footer's two sizes is the disk's size, as qemu-img 7.2 decides: Virtual PC itself and older
/// qemu sized disks by their CHS geometry (currentSize is then usually larger), while Hyper-V, Disk2VHD, Citrix,
/// the Xen tools and qemu's own <c>force_size</c> images ("qem2") mean currentSize. The geometry 65535/16/255
/// means currentSize whoever wrote it. <c>force_size_calc=chs|current_size</c> overrides the guess.
/// </summary>
internal static class VpcSizeRule
{
    public const string OptionName = "force_size_calc";

    /// <summary>Creators known to size a disk by currentSize.</summary>
    private static readonly string[] CurrentSizeCreators = ["win ", "qem2", "d2v ", "CTXS", "tap\0"];

    public static bool UsesCurrentSize(VpcFooter footer, string? force)
    {
        switch (force)
        {
            case null or "":
                return footer.GeometrySectors == VpcFooter.MaxGeometrySectors || CurrentSizeCreators.Contains(footer.CreatorApp, StringComparer.Ordinal);
            case "chs":
                return false;
            case "current_size":
                return true;
            default:
                throw new OptionException($"vpc: {OptionName}={force} is not allowed; use chs or current_size");
        }
    }

    /// <summary>
    /// The geometry the VHD specification (appendix "CHS calculation") gives a number of sectors; at most
    /// 65535·16·255 sectors.
    /// </summary>
    public static (ushort Cylinders, byte Heads, byte SectorsPerTrack) Geometry(long sectors)
    {
        sectors = Math.Min(sectors, VpcFooter.MaxGeometrySectors);
        int spt;
        int heads;
        long cylTimesHeads;
        if (sectors >= 65535L * 16 * 63)
        {
            spt = 255;
            heads = 16;
            cylTimesHeads = sectors / spt;
        }
        else
        {
            spt = 17;
            cylTimesHeads = sectors / spt;
            heads = (int)Math.Max(4, (cylTimesHeads + 1023) / 1024);
            if (cylTimesHeads >= heads * 1024L || heads > 16)
            {
                spt = 31;
                heads = 16;
                cylTimesHeads = sectors / spt;
            }

            if (cylTimesHeads >= heads * 1024L)
            {
                spt = 63;
                heads = 16;
                cylTimesHeads = sectors / spt;
            }
        }

        return ((ushort)(cylTimesHeads / heads), (byte)heads, (byte)spt);
    }
}
