using UrlDisk.Fuzz.Targets;

namespace UrlDisk.Fuzz;

/// <summary>Every harness, by name.</summary>
public static class FuzzTargets
{
    public static IReadOnlyList<IFuzzTarget> All { get; } =
    [
        new SpecParserTarget(),
        new Qcow2HeaderTarget(),
        new Qcow2ImageTarget(),
        new VmdkTarget(),
        new VdiTarget(),
        new NbdHandshakeTarget(),
        new NbdTransmissionTarget(),
        new FtpReplyTarget(),
        new TftpPacketTarget(),
        new VpcImageTarget(),
        new VhdxImageTarget(),
        new XzIndexTarget(),
        new DiskCacheIndexTarget(),
        new BootProfileTarget(),
        new VdiCheckTarget(),
        new VhdxCheckTarget(),
        new VmdkCheckTarget(),
    ];

    public static IFuzzTarget? Find(string name) => All.FirstOrDefault(t => t.Name == name);
}
