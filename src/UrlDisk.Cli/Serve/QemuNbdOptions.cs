using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Serve;

/// <summary>
/// The qemu-nbd options of <c>serve</c> beyond the basic ones: <c>--fork</c>, <c>-s/--snapshot</c>, <c>-L/--list</c>,
/// <c>-A/--allocation-depth</c>, <c>--tls-cert/--tls-key</c>, <c>--tls-ca/--tls-hostname</c> (-L), <c>--discard</c>, <c>--detect-zeroes</c>, <c>--cache</c>,
/// <c>--aio</c> and <c>-o/--offset</c>, with their checks.
/// </summary>
internal sealed class QemuNbdOptions
{
    public Option<bool> Fork { get; } = new("--fork") { Description = "Return once the server listens and the image is open; keep serving in the background" };

    public Option<bool> Snapshot { get; } = new("--snapshot", "-s") { Description = "Write to a temporary qcow2 overlay (deleted at exit); the image itself is never written" };

    public Option<bool> List { get; } = new("--list", "-L") { Description = "List the exports of the server at -k/--socket or -b/--bind and -p/--port (or an nbd:// URL) and exit" };

    public Option<bool> AllocationDepth { get; } = new("--allocation-depth", "-A") { Description = "Offer the qemu:allocation-depth metadata context (0 unallocated, 1 in the image, N+1 in its N-th backing file)" };

    public Option<string?> TlsCert { get; } = new("--tls-cert") { Description = "PEM certificate (chain) of the server: clients must use TLS (NBD STARTTLS); needs --tls-key" };

    public Option<string?> TlsKey { get; } = new("--tls-key") { Description = "PEM private key of --tls-cert" };

    public Option<string?> TlsCa { get; } = new("--tls-ca") { Description = "With -L: use TLS (NBD STARTTLS) and trust only this PEM CA file for the server's certificate" };

    public Option<string?> TlsHostname { get; } = new("--tls-hostname") { Description = "With -L: use TLS and check the server's certificate for this name instead of the host's" };

    public Option<string> Discard { get; } = new("--discard") { Description = "unmap (on): trims free space in the image (holes in a raw file); ignore (off): trims do nothing", DefaultValueFactory = _ => "unmap" };

    public Option<string> DetectZeroes { get; } = new("--detect-zeroes") { Description = "off, on (a write of zeros becomes write-zeroes) or unmap (and may punch a hole; needs --discard=unmap)", DefaultValueFactory = _ => "off" };

    public Option<string?> Cache { get; } = new("--cache") { Description = "Accepted for qemu-nbd compatibility: none, writeback, writethrough, directsync, unsafe (UrlDisk always uses the page cache and honours FLUSH/FUA)" };

    public Option<bool> NoCache { get; } = new("--nocache", "-n") { Description = "qemu-nbd's short form of --cache=none (accepted; the page cache is used as with every mode)" };

    public Option<string?> Aio { get; } = new("--aio") { Description = "Accepted for qemu-nbd compatibility: threads, native, io_uring (UrlDisk does its own I/O)" };

    public Option<string?> Offset { get; } = new("--offset", "-o") { Description = "Export the image from this byte offset on (a size such as 1M is allowed)" };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Fork, Snapshot, List, AllocationDepth, TlsCert, TlsKey, TlsCa, TlsHostname, Discard, DetectZeroes, Cache, NoCache, Aio, Offset })
        {
            command.Options.Add(o);
        }
    }

    /// <summary>The checked values of the options that shape the export.</summary>
    internal sealed record Settings(DiscardMode Discard, DetectZeroes DetectZeroes, long Offset, string? TlsCert, string? TlsKey);

    /// <summary>TLS for -L from --tls-ca/--tls-hostname, or null when neither is given (an nbds:// URL may still ask for it).</summary>
    public Sources.Nbd.NbdTls? ListTls(ParseResult r)
        => r.GetValue(TlsCa) is null && r.GetValue(TlsHostname) is null
            ? null
            : Sources.Nbd.NbdAddress.TlsFrom(key => key switch { "tls-ca" => r.GetValue(TlsCa), "tls-hostname" => r.GetValue(TlsHostname), _ => null }, key => $"--{key}");

    public Settings Check(ParseResult r)
    {
        if (r.GetValue(TlsCa) is not null || r.GetValue(TlsHostname) is not null)
        {
            throw new OptionException("--tls-ca and --tls-hostname are for -L/--list (a TLS client); the server's own TLS is --tls-cert/--tls-key");
        }

        var discard = r.GetValue(Discard) switch
        {
            "unmap" or "on" => DiscardMode.Unmap,
            "ignore" or "off" => DiscardMode.Ignore,
            var other => throw new OptionException($"--discard: '{other}' is not allowed; use unmap (on) or ignore (off)"),
        };
        var detect = r.GetValue(DetectZeroes) switch
        {
            "off" => Serve.DetectZeroes.Off,
            "on" => Serve.DetectZeroes.On,
            "unmap" => Serve.DetectZeroes.Unmap,
            var other => throw new OptionException($"--detect-zeroes: '{other}' is not allowed; use off, on or unmap"),
        };
        if (detect == Serve.DetectZeroes.Unmap && discard != DiscardMode.Unmap)
        {
            throw new OptionException("--detect-zeroes=unmap needs --discard=unmap, as with qemu-nbd");
        }

        CacheMode.Check(r.GetValue(Cache), "--cache: invalid cache mode");

        if (r.GetValue(Aio) is { } aio && aio is not ("threads" or "native" or "io_uring"))
        {
            throw new OptionException($"--aio: '{aio}' is not allowed; use threads, native or io_uring");
        }

        long offset = 0;
        if (r.GetValue(Offset) is { } text)
        {
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out offset) && !SizeParser.TryParse(text, out offset))
            {
                throw new OptionException($"--offset: '{text}' is not a byte offset; use a whole number of bytes (or a size such as 1M)");
            }
        }

        string? cert = r.GetValue(TlsCert);
        string? key = r.GetValue(TlsKey);
        if ((cert is null) != (key is null))
        {
            throw new OptionException("--tls-cert and --tls-key go together; give both PEM files");
        }

        foreach (var (file, name) in new[] { (cert, "--tls-cert"), (key, "--tls-key") })
        {
            if (file is not null && !File.Exists(file))
            {
                throw new OptionException($"{name}: '{file}' does not exist; give a PEM file");
            }
        }

        return new Settings(discard, detect, offset, cert, key);
    }

    /// <summary>The server's certificate and key from the PEM files, or null without TLS; a bad file is named.</summary>
    public static X509Certificate2? LoadCertificate(Settings settings)
    {
        if (settings.TlsCert is null || settings.TlsKey is null)
        {
            return null;
        }

        try
        {
            return X509Certificate2.CreateFromPemFile(settings.TlsCert, settings.TlsKey);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new OptionException($"--tls-cert/--tls-key: cannot load '{settings.TlsCert}' with '{settings.TlsKey}' as a PEM certificate and its private key: {e.Message}");
        }
    }
}
