namespace UrlDisk.Opening;

/// <summary>What a protocol driver's sources can be, known before one is opened: layers use it to say which drivers take their options.</summary>
[Flags]
internal enum SourceTraits
{
    /// <summary>A local file: no layer applies.</summary>
    None = 0,

    /// <summary>Data comes over a network (http, ftp, tftp): caches apply.</summary>
    Remote = 1,

    /// <summary>The source can read byte ranges (it may still turn out not to, e.g. an HTTP server without ranges).</summary>
    Ranges = 2,

    /// <summary>The source may only send the whole file in order (<see cref="Layers.ISequentialSource"/>).</summary>
    Sequential = 4,
}
