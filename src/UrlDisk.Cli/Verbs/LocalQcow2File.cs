using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;
using UrlDisk.Sources.File;
using UrlDisk.Specs;

namespace UrlDisk.Cli.Verbs;

/// <summary>The local qcow2 file a verb edits in place (amend, snapshot -c/-a/-d), opened writable, without the format over it.</summary>
internal static class LocalQcow2File
{
    /// <summary>
    /// Opens <paramref name="tree"/>'s file for writing; <paramref name="notLocal"/> is the error for a remote image and
    /// <paramref name="notQcow2"/> (given the format found) for anything but qcow2.
    /// </summary>
    public static async Task<FileSource> OpenAsync(OptionTree tree, string? format, string notLocal, Func<string, string> notQcow2, CancellationToken ct)
    {
        if (!ServeVerb.IsLocalFile(tree))
        {
            throw new OptionException(notLocal);
        }

        string? fmt = format ?? tree["driver"];
        var protocolNode = tree.HasChild("file") ? tree.Child("file") : tree;
        var file = await ImageOpener.OpenProtocolAsync(protocolNode, new OpenContext { Writable = true }, ct).ConfigureAwait(false);
        try
        {
            var head = new byte[(int)Math.Min(file.Length, 512)];
            await file.ReadAsync(0, head, ct).ConfigureAwait(false);
            bool isQcow2 = new Qcow2FormatDriver().Probe(head) > 0;
            if ((fmt is not null && fmt != "qcow2") || !isQcow2 || file is not FileSource source)
            {
                throw new UrlDiskException(notQcow2(isQcow2 ? "qcow2" : fmt ?? "raw"));
            }

            return source;
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
