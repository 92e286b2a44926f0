// Makes a local qcow2 overlay over a remote image, reads it all with copy-on-read (so the overlay keeps every byte),
// then reads it again without the backing file and checks both reads agree.
// Usage: CopyOnReadOverlay URL OVERLAY.qcow2
using UrlDisk;
using UrlDisk.Formats.Qcow2;
using UrlDisk.Opening;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: CopyOnReadOverlay URL OVERLAY.qcow2");
    return 2;
}

string url = args[0], overlayPath = Path.GetFullPath(args[1]);
long size;
await using (var remote = await ImageOpener.OpenAsync(url))
{
    size = remote.Length;
}

await Qcow2Creator.CreateAsync(overlayPath, size, new Qcow2CreateOptions { BackingFile = url, BackingFormat = "raw" });
byte[] first = new byte[size], second = new byte[size];
await using (var overlay = await ImageOpener.OpenAsync(overlayPath, "qcow2", new OpenContext { Writable = true, CopyOnRead = true }))
{
    await overlay.ReadAsync(0, first);
    await overlay.FlushAsync();
}

// Every cluster is in the overlay now: it opens and reads without the backing file.
await using (var alone = await ImageOpener.OpenAsync(overlayPath, "qcow2", new OpenContext { NoBacking = true }))
{
    await alone.ReadAsync(0, second);
}

bool same = first.AsSpan().SequenceEqual(second);
Console.WriteLine(same ? $"copied {size} bytes into {overlayPath}" : "the overlay differs from the backing image");
return same ? 0 : 1;
