using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Sources.Ftp;

/// <summary>
/// <c>ftp://</c> (plain, or AUTH TLS with <c>tls=explicit</c>) and <c>ftps://</c> (implicit TLS). Credentials come from
/// the URL's user info (percent-decoded) or <c>username</c> + <c>password-file</c>; anonymous otherwise.
/// </summary>
internal sealed class FtpDriver(string scheme) : IProtocolDriver
{
    public string Name { get; } = scheme is "ftp" or "ftps" ? scheme : throw new ArgumentException("scheme must be ftp or ftps", nameof(scheme));

    public IReadOnlyCollection<string> Schemes => [Name];

    public IReadOnlyCollection<string> OptionNames => FtpSettings.OptionNames;

    public async ValueTask<IBlockDevice> OpenAsync(OptionTree node, OpenContext context, CancellationToken cancellationToken)
    {
        if (context.Writable)
        {
            throw new OptionException($"{Name}: FTP sources are read-only; write to a local overlay instead");
        }

        var settings = FtpSettings.FromNode(Name, node);
        var diskCache = Layers.DiskCache.DiskCacheSettings.FromNode(Name, node);
        var device = await FtpSource.OpenAsync(settings, context, cancellationToken).ConfigureAwait(false);
        return device is FtpSource ? await Layers.DiskCache.DiskCache.WrapAsync(device, diskCache, context).ConfigureAwait(false) : device;
    }
}
