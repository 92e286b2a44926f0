using System.Numerics;
using UrlDisk.Specs;

namespace UrlDisk.Formats.Qcow2;

/// <summary>What <c>create -f qcow2 -o …</c> accepts, with QEMU's defaults.</summary>
public sealed record Qcow2CreateOptions
{
    /// <summary>Cluster size in bytes: a power of two from 512 to 2M (default 64k).</summary>
    public int ClusterSize { get; init; } = 65536;

    /// <summary>"1.1" (version 3) or "0.10" (version 2).</summary>
    public string Compat { get; init; } = "1.1";

    /// <summary>"zlib" or "zstd".</summary>
    public string CompressionType { get; init; } = "zlib";

    /// <summary>Bits per refcount: 1, 2, 4, 8, 16, 32 or 64 (v3; default 16).</summary>
    public int RefcountBits { get; init; } = 16;
    /// <summary>Extended L2 entries with 32 subclusters per cluster (v3).</summary>
    public bool ExtendedL2 { get; init; }
    /// <summary>Defer refcount updates (v3; the image is marked dirty until closed cleanly).</summary>
    public bool LazyRefcounts { get; init; }

    /// <summary>
    /// <c>off</c> (default), <c>metadata</c> (every guest cluster mapped, data sparse), <c>falloc</c> (and the data
    /// area reserved) or <c>full</c> (and zeros written), as qemu-img.
    /// </summary>
    public string Preallocation { get; init; } = "off";

    /// <summary>Stored as given (path, URL or json: spec).</summary>
    public string? BackingFile { get; init; }

    /// <summary>The format of <see cref="BackingFile"/> (<c>raw</c> or <c>qcow2</c>); probed when null.</summary>
    public string? BackingFormat { get; init; }

    /// <summary>The option names <see cref="Parse"/> accepts (qemu-img's <c>-o</c> names).</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["cluster_size", "compat", "compression_type", "refcount_bits", "extended_l2", "lazy_refcounts", "backing_file", "backing_fmt", "preallocation"];

    /// <summary>Parses <c>key=value,…</c> (qemu-img's -o) onto <paramref name="start"/>.</summary>
    public static Qcow2CreateOptions Parse(string? text, Qcow2CreateOptions? start = null)
    {
        var o = start ?? new Qcow2CreateOptions();
        if (string.IsNullOrEmpty(text))
        {
            return o;
        }

        var tree = SpecParser.ParseKeyValue(text);
        tree.RejectUnknown("qcow2", Names);
        return o with
        {
            ClusterSize = (int)Math.Min(int.MaxValue, tree.GetSize("cluster_size", o.ClusterSize)),
            Compat = tree["compat"] ?? o.Compat,
            CompressionType = tree["compression_type"] ?? o.CompressionType,
            RefcountBits = tree.GetInt("refcount_bits", o.RefcountBits, 1, 64),
            ExtendedL2 = tree.GetBool("extended_l2", o.ExtendedL2),
            LazyRefcounts = tree.GetBool("lazy_refcounts", o.LazyRefcounts),
            Preallocation = tree["preallocation"] ?? o.Preallocation,
            BackingFile = tree["backing_file"] ?? o.BackingFile,
            BackingFormat = tree["backing_fmt"] ?? o.BackingFormat,
        };
    }

    /// <summary>Checks the combination; the message names the option and what is allowed.</summary>
    public void Validate()
    {
        if (ClusterSize < 512 || ClusterSize > 2 * 1024 * 1024 || !BitOperations.IsPow2(ClusterSize))
        {
            throw new OptionException($"qcow2: cluster_size {ClusterSize} is not allowed; use a power of two from 512 to 2M");
        }

        if (Compat is not ("1.1" or "0.10" or "v3" or "v2"))
        {
            throw new OptionException($"qcow2: compat '{Compat}' is not allowed; use 1.1 or 0.10");
        }

        if (CompressionType is not ("zlib" or "zstd"))
        {
            throw new OptionException($"qcow2: compression_type '{CompressionType}' is not allowed; use zlib or zstd");
        }

        if (!BitOperations.IsPow2(RefcountBits) || RefcountBits > 64)
        {
            throw new OptionException($"qcow2: refcount_bits {RefcountBits} is not allowed; use 1, 2, 4, 8, 16, 32 or 64");
        }

        bool v2 = Version == 2;
        if (v2 && (RefcountBits != 16 || ExtendedL2 || CompressionType != "zlib" || LazyRefcounts))
        {
            throw new OptionException("qcow2: compat=0.10 allows only refcount_bits=16, extended_l2=off, compression_type=zlib and lazy_refcounts=off; use compat=1.1");
        }

        if (ExtendedL2 && ClusterSize < 16384)
        {
            throw new OptionException($"qcow2: extended_l2=on needs cluster_size of at least 16k, not {ClusterSize}");
        }

        if (BackingFile is not null && string.IsNullOrEmpty(BackingFormat))
        {
            throw new OptionException("qcow2: a backing file needs its format (-F raw or -F qcow2), as qemu-img requires");
        }

        if (Preallocation is not ("off" or "metadata" or "falloc" or "full"))
        {
            throw new OptionException($"qcow2: preallocation '{Preallocation}' is not allowed; use off, metadata, falloc or full");
        }

        if (BackingFile is not null && Preallocation != "off" && !ExtendedL2)
        {
            // qemu-img's own refusal: preallocated clusters would hide the backing file's data.
            throw new OptionException("qcow2: Backing file and preallocation can only be used at the same time if extended_l2 is on");
        }

        if (BackingFile is { Length: > 1023 })
        {
            throw new OptionException("qcow2: the backing file name is longer than 1023 bytes");
        }
    }

    /// <summary>The qcow2 version <see cref="Compat"/> asks for: 2 for <c>0.10</c>, 3 for <c>1.1</c>.</summary>
    public int Version => Compat is "0.10" or "v2" ? 2 : 3;
}
