using UrlDisk.Formats.Qcow2;
using UrlDisk.Formats.Raw;
using UrlDisk.Formats.Vdi;
using UrlDisk.Formats.Vhdx;
using UrlDisk.Formats.Vmdk;
using UrlDisk.Formats.Vpc;
using UrlDisk.Layers;
using UrlDisk.Sources.File;
using UrlDisk.Sources.Ftp;
using UrlDisk.Sources.Http;
using UrlDisk.Sources.Nbd;
using UrlDisk.Sources.Tftp;

namespace UrlDisk.Opening;

/// <summary>The drivers the opener knows. New sources, layers and formats register here.</summary>
internal static class Drivers
{
    public static IReadOnlyList<IProtocolDriver> Protocols { get; } =
    [
        new FileDriver(),
        new HttpDriver("http"),
        new HttpDriver("https"),
        new FtpDriver("ftp"),
        new FtpDriver("ftps"),
        new TftpDriver(),
        new NbdDriver(),
    ];

    /// <summary>Layers over a source, in stacking order (bottom first): a new layer is one line here.</summary>
    public static IReadOnlyList<ILayerDriver> Layers { get; } =
    [
        new FillCacheLayer(),
        new Layers.DiskCache.DiskCacheLayer(),
        new ReadaheadLayer(),
        new Layers.Prefetch.BootProfileLayer(),
    ];

    public static IReadOnlyList<IFormatDriver> Formats { get; } =
    [
        new RawFormatDriver(),
        new Qcow2FormatDriver(),
        new VmdkFormatDriver(),
        new VdiFormatDriver(),
        new VpcFormatDriver(),
        new VhdxFormatDriver(),
    ];

    public static IProtocolDriver? FindProtocol(string name)
        => Protocols.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.Ordinal));

    public static IFormatDriver? FindFormat(string name)
        => Formats.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.Ordinal));

    public static IProtocolDriver? FindByScheme(string scheme)
        => Protocols.FirstOrDefault(d => d.Schemes.Contains(scheme, StringComparer.OrdinalIgnoreCase));

    public static string ProtocolNames => string.Join(", ", Protocols.Select(p => p.Name));

    public static string FormatNames => string.Join(", ", Formats.Select(p => p.Name));
}
