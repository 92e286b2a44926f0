namespace UrlDisk.Formats.Vpc;

/// <summary>
/// <c>-o</c> options of <c>convert -O vpc</c>: <c>subformat=fixed</c> (the only one written; Azure takes only fixed
/// disks) and <c>force_size=on|off</c>. Without force_size the size is rounded up to a CHS geometry, as qemu-img
/// does; with it the exact size (rounded to a sector) is kept and the footer says "qem2" and 65535/16/255, which
/// Azure's whole-MiB sizes need.
/// </summary>
internal sealed record VpcCreateOptions(bool ForceSize)
{
    public static VpcCreateOptions Parse(string? text)
    {
        string subformat = "fixed";
        bool force = false;
        foreach (var part in (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            string key = eq < 0 ? part : part[..eq];
            string value = eq < 0 ? "on" : part[(eq + 1)..];
            switch (key)
            {
                case "subformat":
                    subformat = value;
                    break;
                case "force_size":
                    force = value switch
                    {
                        "on" or "true" or "yes" => true,
                        "off" or "false" or "no" => false,
                        _ => throw new OptionException($"-o force_size={value}: use on or off"),
                    };
                    break;
                default:
                    throw new OptionException($"-o {key}: not a vpc option; allowed: subformat=fixed, force_size=on|off");
            }
        }

        if (subformat != "fixed")
        {
            throw new OptionException($"-o subformat={subformat}: only subformat=fixed is written (the form Azure takes); dynamic VHDs are read, not written");
        }

        return new VpcCreateOptions(force);
    }

    /// <summary>The disk size and footer for an image of <paramref name="length"/> bytes.</summary>
    public VpcFooter FooterFor(long length, DateTimeOffset now)
    {
        long sectors = (length + 511) / 512;
        ushort cylinders;
        byte heads;
        byte spt;
        if (ForceSize)
        {
            (cylinders, heads, spt) = (65535, 16, 255);
        }
        else
        {
            // Grow the sector count until a geometry covers it, so nothing is cut off (qemu-img does the same).
            (cylinders, heads, spt) = VpcSizeRule.Geometry(sectors);
            for (long i = 1; (long)cylinders * heads * spt < sectors && (long)cylinders * heads * spt < VpcFooter.MaxGeometrySectors; i++)
            {
                (cylinders, heads, spt) = VpcSizeRule.Geometry(sectors + i);
            }

            long chs = (long)cylinders * heads * spt;
            if (chs != VpcFooter.MaxGeometrySectors)
            {
                sectors = chs;
            }
        }

        if (sectors > VpcImage.MaxSectors)
        {
            throw new OptionException($"vpc: {length} bytes is larger than a VHD can hold ({VpcImage.MaxSectors * 512} bytes)");
        }

        return new VpcFooter
        {
            Timestamp = VpcFooter.TimestampOf(now),
            CreatorApp = ForceSize ? "qem2" : "qemu",
            OriginalSize = (ulong)sectors * 512,
            CurrentSize = (ulong)sectors * 512,
            Cylinders = cylinders,
            Heads = heads,
            SectorsPerTrack = spt,
            DiskType = VpcDiskType.Fixed,
            UniqueId = Guid.NewGuid(),
        };
    }
}
