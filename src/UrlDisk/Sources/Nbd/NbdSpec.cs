using UrlDisk.Specs;

namespace UrlDisk.Sources.Nbd;

/// <summary>
/// The nbd driver's options, in QEMU's spellings (block/nbd.c and QAPI BlockdevOptionsNbd): a <c>url</c> (what
/// <c>filename</c> becomes), or <c>server.type=inet|unix</c> with <c>server.host</c>/<c>server.port</c> or
/// <c>server.path</c>, or the legacy <c>host</c>/<c>port</c>/<c>path</c>; <c>export</c>; and TLS: QEMU's
/// <c>tls-hostname</c>, libnbd's <c>tls-certificates</c>/<c>tls-verify-peer</c>, our <c>tls-ca</c>, and <c>tls=on</c>
/// for the system's CAs. QEMU's <c>tls-creds</c> names a <c>--object</c>, which urldisk has not: it is refused with
/// the equivalent.
/// </summary>
internal static class NbdSpec
{
    public static readonly string[] Names =
        ["url", "server", "host", "port", "path", "export", "tls", "tls-creds", .. NbdTls.OptionNames];

    private static readonly string[] s_serverNames = ["type", "host", "port", "path"];

    public static NbdAddress AddressOf(OptionTree node)
    {
        if (node["server"] is not null)
        {
            throw new OptionException($"nbd: option '{node.Path}server' is an object: give server.type=inet with server.host and server.port, or server.type=unix with server.path");
        }

        if (node["tls-creds"] is not null)
        {
            throw new OptionException($"nbd: option '{node.Path}tls-creds' names a QEMU --object, which urldisk does not take; give the object's directory as tls-certificates=DIR (ca-cert.pem, and client-cert.pem/client-key.pem when the server wants them), or a CA file as tls-ca=FILE");
        }

        string? url = node["url"];
        bool hasServer = node.HasChild("server");
        string[] legacy = [.. new[] { "host", "port", "path" }.Where(node.Contains)];
        NbdAddress address;
        if (url is not null)
        {
            if (hasServer || legacy.Length > 0 || node.Contains("export"))
            {
                throw new OptionException($"nbd: give the server as a URL ('{node.Path}url' or filename) or with server.*/host/port/path/export, not both");
            }

            address = NbdAddress.Parse(url);
        }
        else if (hasServer)
        {
            if (legacy.Length > 0)
            {
                throw new OptionException($"nbd: '{node.Path}{legacy[0]}' cannot be combined with server.*; use server.host/server.port/server.path");
            }

            address = FromServer(node.Child("server"), Export(node));
        }
        else if (legacy.Length > 0)
        {
            address = FromLegacy(node, Export(node));
        }
        else
        {
            throw new OptionException($"nbd: say where the server is: '{node.Path}url' (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH, nbds://…), server.type=inet with server.host[/server.port], server.type=unix with server.path, or host[/port] or path");
        }

        return WithTls(node, address);
    }

    private static string Export(OptionTree node)
    {
        string export = node["export"] ?? "";
        if (System.Text.Encoding.UTF8.GetByteCount(export) > 4096)
        {
            throw new OptionException($"nbd: option '{node.Path}export' is longer than 4096 bytes");
        }

        return export;
    }

    private static NbdAddress FromServer(OptionTree server, string export)
    {
        server.RejectUnknown("nbd", s_serverNames);
        return server["type"] switch
        {
            "inet" => server["path"] is not null
                ? throw new OptionException($"nbd: '{server.Path}path' belongs to server.type=unix")
                : Inet(server, export),
            "unix" => server["host"] is not null || server["port"] is not null
                ? throw new OptionException($"nbd: '{server.Path}host'/'{server.Path}port' belong to server.type=inet")
                : new NbdAddress(null, 0, Required(server, "path"), export),
            null => throw new OptionException($"nbd: option '{server.Path}type' is required: inet (server.host, server.port) or unix (server.path)"),
            var other => throw new OptionException($"nbd: {server.Path}type '{other}' is not supported; use inet or unix"),
        };
    }

    private static NbdAddress FromLegacy(OptionTree node, string export)
    {
        if (node["path"] is not null)
        {
            return node["host"] is not null || node["port"] is not null
                ? throw new OptionException($"nbd: '{node.Path}path' (a Unix socket) cannot be combined with host/port")
                : new NbdAddress(null, 0, Required(node, "path"), export);
        }

        return Inet(node, export);
    }

    private static NbdAddress Inet(OptionTree node, string export)
    {
        string host = Required(node, "host").Trim('[', ']');
        int port = node.GetInt("port", NbdAddress.DefaultPort, 1, 65535);
        return new NbdAddress(host, port, null, export);
    }

    private static string Required(OptionTree node, string key)
        => node[key] is { Length: > 0 } v ? v : throw new OptionException($"nbd: option '{node.Path}{key}' is required and may not be empty");

    /// <summary>tls-* options turn TLS on (as QEMU's tls-creds does), also for an nbd:// URL; an nbds:// URL's own query comes first.</summary>
    private static NbdAddress WithTls(OptionTree node, NbdAddress address)
    {
        bool any = NbdTls.OptionNames.Any(node.Contains);
        bool forced = node.GetBool("tls", address.Tls is not null || any);
        if (!forced)
        {
            if (address.Tls is not null || any)
            {
                throw new OptionException($"nbd: '{node.Path}tls=off' contradicts an nbds:// URL or tls-* options");
            }

            return address;
        }

        if (!any)
        {
            return address with { Tls = address.Tls ?? NbdTls.Default };
        }

        if (address.Tls is not null && address.Tls != NbdTls.Default)
        {
            throw new OptionException("nbd: give the tls-* settings in the nbds:// URL's query or as options, not both");
        }

        return address with { Tls = NbdAddress.TlsFrom(key => node[key], key => $"nbd: option '{node.Path}{key}'") };
    }
}
