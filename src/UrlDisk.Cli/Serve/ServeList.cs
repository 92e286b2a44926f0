using System.Globalization;
using System.Text;
using UrlDisk.Sources.Nbd;

namespace UrlDisk.Cli.Serve;

/// <summary><c>serve -L/--list</c>: the exports of an NBD server (over TLS too), printed as <c>qemu-nbd -L</c> prints them.</summary>
internal static class ServeList
{
    public static async Task<int> RunAsync(NbdAddress address, CancellationToken ct)
    {
        var exports = await NbdClient.ListAsync(address, ct).ConfigureAwait(false);
        Console.Out.Write(Format(exports));
        return 0;
    }

    /// <summary>The address from -k, or -b/-p, or an nbd:// (nbds://) URL given as the filename; <paramref name="tls"/> from --tls-ca/--tls-hostname.</summary>
    public static NbdAddress AddressOf(string? url, string? socket, string bind, int port, NbdTls? tls = null)
    {
        if (url is not null)
        {
            if (socket is not null)
            {
                throw new OptionException("--list: give the server as an nbd:// URL or with -k/-b/-p, not both");
            }

            var address = NbdAddress.Parse(url);
            if (tls is not null && address.Tls is not null && address.Tls != NbdTls.Default)
            {
                throw new OptionException("--list: give the TLS settings in the nbds:// URL's query or as --tls-ca/--tls-hostname, not both");
            }

            return tls is null ? address : address with { Tls = tls };
        }

        return socket is not null ? new NbdAddress(null, 0, socket, "") { Tls = tls } : new NbdAddress(bind, port, null, "") { Tls = tls };
    }

    private static readonly string[] s_flagNames =
        ["", "readonly", "flush", "fua", "rotational", "trim", "zeroes", "df", "multi", "resize", "cache", "fast-zero"];

    internal static string Format(IReadOnlyList<NbdClient.ExportListing> exports)
    {
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        sb.Append(c, $"exports available: {exports.Count}\n");
        foreach (var e in exports)
        {
            sb.Append(c, $" export: '{e.Name}'\n");
            if (e.Description.Length > 0)
            {
                sb.Append(c, $"  description: {e.Description}\n");
            }

            sb.Append(c, $"  size:  {e.Size}\n");
            sb.Append(c, $"  flags: 0x{(ushort)e.Flags:x} (");
            for (int bit = 1; bit < s_flagNames.Length; bit++)
            {
                if (((ushort)e.Flags & (1 << bit)) != 0)
                {
                    sb.Append(' ').Append(s_flagNames[bit]);
                }
            }

            sb.Append(" )\n");
            // As qemu-nbd -L: the sizes only when the server sent NBD_INFO_BLOCK_SIZE (nbdkit 1.32 does not).
            if (e.MinimumBlockSize != 0)
            {
                sb.Append(c, $"  min block: {e.MinimumBlockSize}\n");
                sb.Append(c, $"  opt block: {e.PreferredBlockSize}\n");
                sb.Append(c, $"  max block: {e.MaximumBlockSize}\n");
            }

            if (e.MetaContexts.Count > 0)
            {
                sb.Append(c, $"  available meta contexts: {e.MetaContexts.Count}\n");
                foreach (string m in e.MetaContexts)
                {
                    sb.Append(c, $"   {m}\n");
                }
            }
        }

        return sb.ToString();
    }
}
