using UrlDisk.Sources.File;

namespace UrlDisk.Opening;

/// <summary>Local files that formats create and write (qcow2 create and convert targets), opened for them by the opener.</summary>
internal static class HostFiles
{
    /// <summary>Opens an existing local file for reading and writing, as a device that can grow.</summary>
    public static IGrowableFile OpenWritable(string path) => FileSource.Open(path, writable: true);
}
