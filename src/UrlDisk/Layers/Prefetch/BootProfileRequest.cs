using Microsoft.Extensions.Logging;
using UrlDisk.Diagnostics;
using UrlDisk.Opening;
using UrlDisk.Sources;

namespace UrlDisk.Layers.Prefetch;

/// <summary>
/// What a user asked of boot profiles for one open (<c>serve --record-profile FILE</c>, <c>--prefetch-profile FILE</c>,
/// or a profile <see cref="Directory"/> holding one profile per image version). It applies to the first remote source
/// of the graph (the image's own URL, or the URL an overlay's backing chain reaches): the file whose reads a boot makes.
/// One request object is shared by every open of a graph (OpenContext copies keep the reference), so it is claimed once.
/// </summary>
internal sealed class BootProfileRequest
{
    /// <summary>Record the reads of this open into this file (replacing it).</summary>
    public string? RecordFile { get; init; }

    /// <summary>Prefetch the ranges recorded in this file.</summary>
    public string? PrefetchFile { get; init; }

    /// <summary>
    /// One profile per image version, named <c>KEY.profile</c> by its <see cref="ContentIdentity.Key"/>: prefetch when it
    /// exists, record when not. Used when neither file is named.
    /// </summary>
    public string? Directory { get; init; }

    /// <summary>
    /// Without a file or <see cref="Directory"/>: keep the profiles in the disk cache's directory (DIR/profiles) when the
    /// source is read through a disk cache (<c>cache-dir</c>, <c>--cache-dir</c>, <c>URLDISK_CACHE_DIR</c>); otherwise nothing.
    /// </summary>
    public bool InDiskCache { get; init; }

    /// <summary>The folder of a disk cache directory that holds boot profiles.</summary>
    public const string DiskCacheFolder = "profiles";

    /// <summary>Where one-line notes go (a profile ignored, a profile written); the CLI prints them on stderr.</summary>
    public Action<string> Note { get; init; } = _ => { };

    /// <summary>The recording window (tests shorten it).</summary>
    public RecordingWindow Window { get; init; } = RecordingWindow.Default;

    private int _claimed;

    /// <summary>Checks what can be checked before anything opens: the files' folders exist, the modes do not clash.</summary>
    public void Validate()
    {
        if (RecordFile is not null && PrefetchFile is not null && Path.GetFullPath(RecordFile) == Path.GetFullPath(PrefetchFile))
        {
            throw new OptionException($"--record-profile and --prefetch-profile name the same file '{RecordFile}'; record into another file");
        }

        if (RecordFile is not null)
        {
            string dir = Path.GetDirectoryName(Path.GetFullPath(RecordFile))!;
            if (System.IO.Directory.Exists(RecordFile) || !System.IO.Directory.Exists(dir))
            {
                throw new OptionException($"--record-profile: '{RecordFile}' must be a file in an existing directory");
            }
        }

        if (PrefetchFile is not null && !File.Exists(PrefetchFile))
        {
            throw new OptionException($"--prefetch-profile: '{PrefetchFile}' does not exist (record one with --record-profile)");
        }
    }

    /// <summary>
    /// Stacks the recording and/or prefetching layer over <paramref name="source"/> when this request applies to it
    /// (the first source with a content identity); otherwise returns it unchanged.
    /// </summary>
    public async ValueTask<IBlockDevice> ApplyAsync(IBlockDevice source, OpenContext context, CancellationToken cancellationToken)
    {
        string? directory = Directory
            ?? (InDiskCache && LayerContext.Find<DiskCache.DiskCache>(source) is { } cache ? Path.Combine(cache.Directory, DiskCacheFolder) : null);
        if (PrefetchFile is null && RecordFile is null && directory is null)
        {
            return source;
        }

        if (ContentIdentity.Find(source) is not { } identity || Interlocked.Exchange(ref _claimed, 1) != 0)
        {
            return source;
        }

        var logger = UrlDiskLogging.Create(context, "UrlDisk.Prefetch");
        string? prefetch = PrefetchFile, record = RecordFile;
        bool fromDirectory = false;
        if (prefetch is null && record is null && directory is not null)
        {
            if (!identity.CanPersist)
            {
                Note($"boot profiles: the server gives no ETag or Last-Modified, so a profile could not tell this image from a changed one; not using {directory}");
                return source;
            }

            string path = Path.Combine(directory, identity.Key + ".profile");
            System.IO.Directory.CreateDirectory(directory);
            fromDirectory = true;
            if (File.Exists(path))
            {
                prefetch = path;
            }
            else
            {
                record = path;
            }
        }

        IBlockDevice device = source;
        if (prefetch is not null)
        {
            if (await LoadAsync(prefetch, identity, strict: !fromDirectory, cancellationToken).ConfigureAwait(false) is { } profile)
            {
                var plan = PrefetchPlan.Build(profile.Ranges);
                int workers = Workers(source);
                logger.LogInformation("prefetch: {Ranges} ranges, {Bytes} bytes from {Profile} with {Workers} workers", plan.Count, plan.Sum(r => r.Length), prefetch, workers);
                device = new PrefetchLayer(device, plan, workers, logger, Note);
            }
            else if (fromDirectory)
            {
                // An unusable profile in the directory is recorded again.
                record = prefetch;
            }
        }

        if (record is not null)
        {
            device = new RecordingLayer(device, identity.Key, record, Window, Note);
        }

        return device;
    }

    /// <summary>
    /// Reads a profile. One for another version of the image, or another profile format version, is ignored with a note.
    /// A damaged one is an error when the user named it (a wrong file given by hand should not pass silently) and a
    /// note when it came from the directory (it is simply recorded again).
    /// </summary>
    private async ValueTask<BootProfile?> LoadAsync(string path, ContentIdentity identity, bool strict, CancellationToken cancellationToken)
    {
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Refuse($"cannot read boot profile '{path}': {e.Message}");
        }

        if (!BootProfile.TryRead(bytes, out var profile, out string error, out bool otherVersion))
        {
            if (otherVersion)
            {
                Note($"boot profile '{path}' ignored: {error}");
                return null;
            }

            return Refuse($"boot profile '{path}' is not usable: {error}");
        }

        if (profile!.IdentityKey != identity.Key || profile.ImageLength != identity.Length)
        {
            Note($"boot profile '{path}' ignored: it was recorded on another version of the image (size, validators or URL differ)");
            return null;
        }

        return profile;

        BootProfile? Refuse(string message)
        {
            if (strict)
            {
                throw new OptionException($"--prefetch-profile: {message}; record a new one with --record-profile");
            }

            Note(message + "; recording a new one");
            return null;
        }
    }

    /// <summary>Parallel fetches: one fewer than the source's connections (one stays free for the guest's misses), 1 to 4; 4 when unknown.</summary>
    private static int Workers(IBlockDevice source)
        => source.Info.Details.TryGetValue("connections", out var c) && c is int n ? Math.Clamp(n - 1, 1, 4) : 4;
}
