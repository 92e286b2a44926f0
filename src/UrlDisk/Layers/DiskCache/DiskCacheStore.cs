using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using UrlDisk.Sources;

namespace UrlDisk.Layers.DiskCache;

/// <summary>What <c>urldisk cache list</c> shows of one entry.</summary>
/// <param name="Name">The entry's file name without extension.</param>
/// <param name="Header">Its header, or null when the index is damaged (it will be discarded).</param>
/// <param name="PresentBytes">Bytes of the distinct blocks the index claims.</param>
/// <param name="LastUsed">When a process last opened it or added a block (the index file's modification time).</param>
/// <param name="DiskBytes">Bytes of the index plus the bytes claimed in the data file.</param>
internal sealed record DiskCacheEntryInfo(string Name, DiskCacheHeader? Header, long PresentBytes, DateTime LastUsed, long DiskBytes);

/// <summary>
/// The cache directory: a flat set of entries, each <c>L-V.index</c> + <c>L-V.data</c> where L is the first 32 hex
/// digits of the location's hash and V of the version's (<see cref="ContentIdentity.LocationKey"/>,
/// <see cref="ContentIdentity.Key"/>), and a <c>lock</c> file. Makes, checks, drops and evicts entries, always under
/// the directory lock; an entry another process still has open may be unlinked (it keeps reading its own files).
/// </summary>
internal sealed class DiskCacheStore : IDisposable
{
    private const string IndexExtension = ".index";
    private const string DataExtension = ".data";
    private const int HeaderReadSize = 16384;

    private readonly ILogger _logger;
    private long _othersEstimate;
    private bool _full;

    public DiskCacheStore(string directory, long maxBytes, ILogger logger)
    {
        Directory = directory;
        MaxBytes = maxBytes;
        _logger = logger;
        System.IO.Directory.CreateDirectory(directory);
        Lock = new CacheDirectoryLock(directory);
    }

    public string Directory { get; }

    public long MaxBytes { get; }

    public CacheDirectoryLock Lock { get; }

    public static string NameOf(ContentIdentity identity) => $"{identity.LocationKey[..32]}-{identity.Key[..32]}";

    /// <summary>
    /// The entry for this version of the file: the one on disk when its index is sound and names the same file,
    /// else a fresh one (with a note saying why). Entries of other versions of the same location are dropped, and
    /// least recently used entries are evicted to make room.
    /// </summary>
    public DiskCacheEntry Open(ContentIdentity identity, int blockSize)
    {
        string name = NameOf(identity);
        using (Lock.Acquire())
        {
            foreach (var other in EntryNames())
            {
                if (other != name && other.StartsWith(identity.LocationKey[..32], StringComparison.Ordinal))
                {
                    _logger.LogInformation("disk cache: {Location} changed (size or validators): the entry of the older version is dropped", Specs.Redact.Url(identity.Location));
                    Delete(other);
                }
            }

            var entry = TryOpenExisting(name, identity) ?? Create(name, identity, blockSize);
            System.IO.File.SetLastWriteTimeUtc(PathOf(name, IndexExtension), DateTime.UtcNow);
            _othersEstimate = EvictLocked(name, entry.PresentBytes, 0);
            return entry;
        }
    }

    /// <summary>
    /// Whether <paramref name="bytes"/> more may be stored for <paramref name="entry"/> within <c>cache-max</c>,
    /// evicting other entries (least recently used first) when needed. The directory is rescanned only when this
    /// process's estimate says the bound is reached, so blocks other processes add meanwhile are seen late.
    /// </summary>
    public bool TryReserve(DiskCacheEntry entry, long bytes)
    {
        if (_full)
        {
            return false;
        }

        if (Interlocked.Read(ref _othersEstimate) + entry.PresentBytes + bytes <= MaxBytes)
        {
            return true;
        }

        using (Lock.Acquire())
        {
            long others = EvictLocked(entry.Name, entry.PresentBytes, bytes);
            Interlocked.Exchange(ref _othersEstimate, others);
            if (others + entry.PresentBytes + bytes <= MaxBytes)
            {
                return true;
            }
        }

        _full = true;
        _logger.LogInformation("disk cache: {Directory} is full (cache-max {Max} bytes) with this file alone; further blocks are read from the source and not kept", Directory, MaxBytes);
        return false;
    }

    /// <summary>The entries in <paramref name="directory"/>, least recently used first.</summary>
    public static IReadOnlyList<DiskCacheEntryInfo> List(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            return [];
        }

        return System.IO.Directory.EnumerateFiles(directory, "*" + IndexExtension)
            .Select(p => Describe(directory, Path.GetFileNameWithoutExtension(p)))
            .OfType<DiskCacheEntryInfo>()
            .OrderBy(e => e.LastUsed)
            .ToList();
    }

    /// <summary>Deletes every entry in <paramref name="directory"/>, under its lock; returns how many and the bytes they claimed.</summary>
    public static (int Entries, long Bytes) Clear(string directory, ILogger logger)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            return (0, 0);
        }

        using var store = new DiskCacheStore(directory, DiskCacheSettings.DefaultMaxBytes, logger);
        using (store.Lock.Acquire())
        {
            int n = 0;
            long bytes = 0;
            foreach (var name in store.EntryNames())
            {
                if (Describe(directory, name) is { } info)
                {
                    n++;
                    bytes += info.PresentBytes;
                }

                store.Delete(name);
            }

            foreach (var stray in System.IO.Directory.EnumerateFiles(directory, "*" + DataExtension).Concat(System.IO.Directory.EnumerateFiles(directory, "*.tmp")))
            {
                System.IO.File.Delete(stray);
            }

            return (n, bytes);
        }
    }

    public void Dispose() => Lock.Dispose();

    private DiskCacheEntry? TryOpenExisting(string name, ContentIdentity identity)
    {
        string indexPath = PathOf(name, IndexExtension);
        if (!System.IO.File.Exists(indexPath))
        {
            return null;
        }

        SafeFileHandle? index = null;
        SafeFileHandle? data = null;
        try
        {
            index = OpenShared(indexPath);
            var head = new byte[(int)Math.Min(RandomAccess.GetLength(index), HeaderReadSize)];
            int got = RandomAccess.Read(index, head, 0);
            string? problem;
            if (!DiskCacheIndex.TryReadHeader(head.AsSpan(0, got), out var header, out int headerSize, out problem))
            {
            }
            else if (header!.Location != identity.Location || header.Length != identity.Length || header.Validators != identity.Validators)
            {
                problem = "the index names another file or version";
            }
            else if (!System.IO.File.Exists(PathOf(name, DataExtension)) || new FileInfo(PathOf(name, DataExtension)).Length != identity.Length)
            {
                problem = "its data file is missing or has the wrong size";
            }

            if (problem is not null)
            {
                _logger.LogWarning("disk cache: the entry for {Location} is discarded: {Problem}; it is made anew", Specs.Redact.Url(identity.Location), problem);
                index.Dispose();
                Delete(name);
                return null;
            }

            data = OpenShared(PathOf(name, DataExtension));
            var entry = new DiskCacheEntry(name, header!, headerSize, data, index);
            if (entry.DamagedRecords > 0)
            {
                _logger.LogWarning("disk cache: {Count} damaged records in the index of {Location} are ignored (those blocks are fetched again)", entry.DamagedRecords, Specs.Redact.Url(identity.Location));
            }

            return entry;
        }
        catch
        {
            index?.Dispose();
            data?.Dispose();
            throw;
        }
    }

    /// <summary>A fresh entry: a sparse data file, then the index made whole in a temp file and renamed into place, so an index never exists half-written.</summary>
    private DiskCacheEntry Create(string name, ContentIdentity identity, int blockSize)
    {
        Delete(name);
        string dataPath = PathOf(name, DataExtension);
        using (var data = System.IO.File.OpenHandle(dataPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
        {
            RandomAccess.SetLength(data, identity.Length);
        }

        var header = new DiskCacheHeader(identity.Location, identity.Length, identity.Validators!, blockSize);
        var bytes = new byte[DiskCacheIndex.HeaderSize(header)];
        int headerSize = DiskCacheIndex.WriteHeader(header, bytes);
        string temp = PathOf(name, $".index.{Environment.ProcessId}.tmp");
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }

        System.IO.File.Move(temp, PathOf(name, IndexExtension), overwrite: true);
        _logger.LogInformation("disk cache: new entry {Name} for {Location} in {Directory}", name, Specs.Redact.Url(identity.Location), Directory);
        return new DiskCacheEntry(name, header, headerSize, OpenShared(dataPath), OpenShared(PathOf(name, IndexExtension)));
    }

    /// <summary>Evicts other entries, least recently used first, until they and <paramref name="ownBytes"/> + <paramref name="wanted"/> fit; returns the bytes the others still hold.</summary>
    private long EvictLocked(string own, long ownBytes, long wanted)
    {
        var others = EntryNames().Where(n => n != own).Select(n => Describe(Directory, n)).OfType<DiskCacheEntryInfo>().OrderBy(e => e.LastUsed).ToList();
        long total = others.Sum(e => e.PresentBytes);
        foreach (var victim in others)
        {
            if (total + ownBytes + wanted <= MaxBytes)
            {
                break;
            }

            _logger.LogInformation("disk cache: evicting {Location} ({Bytes} bytes, least recently used) to stay within cache-max {Max}", victim.Header is null ? victim.Name : Specs.Redact.Url(victim.Header.Location), victim.PresentBytes, MaxBytes);
            Delete(victim.Name);
            total -= victim.PresentBytes;
        }

        return total;
    }

    private IEnumerable<string> EntryNames()
        => System.IO.Directory.EnumerateFiles(Directory, "*" + IndexExtension).Select(Path.GetFileNameWithoutExtension).OfType<string>().ToList();

    /// <summary>Reads an entry's index: its header and the distinct blocks its sound records claim; null when it vanished meanwhile.</summary>
    private static DiskCacheEntryInfo? Describe(string directory, string name)
    {
        string indexPath = Path.Combine(directory, name + IndexExtension);
        byte[] bytes;
        DateTime lastUsed;
        try
        {
            lastUsed = System.IO.File.GetLastWriteTimeUtc(indexPath);
            bytes = System.IO.File.ReadAllBytes(indexPath);
        }
        catch (FileNotFoundException)
        {
            return null;
        }

        if (!DiskCacheIndex.TryReadHeader(bytes, out var header, out int headerSize, out _))
        {
            return new DiskCacheEntryInfo(name, null, 0, lastUsed, bytes.Length);
        }

        var present = new HashSet<long>();
        for (int at = headerSize; at + DiskCacheIndex.RecordSize <= bytes.Length; at += DiskCacheIndex.RecordSize)
        {
            if (DiskCacheIndex.TryReadRecord(bytes.AsSpan(at, DiskCacheIndex.RecordSize), header!.BlockCount, out long block, out _))
            {
                present.Add(block);
            }
        }

        long presentBytes = Math.Min((long)present.Count * header!.BlockSize, header.Length);
        return new DiskCacheEntryInfo(name, header, presentBytes, lastUsed, bytes.Length + presentBytes);
    }

    /// <summary>Index first: without it the data file claims nothing, and a leftover data file is replaced when the entry is made again.</summary>
    private void Delete(string name)
    {
        System.IO.File.Delete(PathOf(name, IndexExtension));
        System.IO.File.Delete(PathOf(name, DataExtension));
    }

    private string PathOf(string name, string extension) => Path.Combine(Directory, name + extension);

    private static SafeFileHandle OpenShared(string path)
        => System.IO.File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
}
