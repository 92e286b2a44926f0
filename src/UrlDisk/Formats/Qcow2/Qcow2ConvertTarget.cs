using UrlDisk.Opening;

namespace UrlDisk.Formats.Qcow2;

/// <summary>
/// A qcow2 output for convert: a new image written under a temporary name beside the target and renamed into
/// place by <see cref="CommitAsync"/> (a failed convert leaves nothing), or an existing image (<c>-n</c>).
/// With <c>compress</c>, whole-cluster writes are stored compressed and all-zero clusters stay unallocated.
/// </summary>
internal sealed class Qcow2ConvertTarget : BlockDevice
{
    private readonly Qcow2Image _image;
    private readonly string _path;
    private readonly string? _tempPath;
    private readonly bool _compress;
    private bool _committed;

    private Qcow2ConvertTarget(Qcow2Image image, string path, string? tempPath, bool compress)
    {
        _image = image;
        _path = path;
        _tempPath = tempPath;
        _compress = compress;
        Info = image.Info with { CanTrim = false };
    }

    /// <summary>True when the target reads as zeros before anything is written (a new image).</summary>
    public bool IsZeroed => _tempPath is not null;

    public Qcow2Image Image => _image;

    public override long Length => _image.Length;

    public override BlockDeviceInfo Info { get; }

    /// <summary>Creates a new image of at least <paramref name="length"/> bytes, or with <paramref name="existing"/> opens the one at <paramref name="path"/>.</summary>
    public static async Task<Qcow2ConvertTarget> CreateAsync(string path, long length, Qcow2CreateOptions? options, bool compress, bool existing, CancellationToken cancellationToken)
    {
        if (existing)
        {
            var file = HostFiles.OpenWritable(path);
            Qcow2Image image;
            try
            {
                image = await Qcow2Image.OpenAsync(file, new OpenContext { Writable = true, BaseLocation = path }, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await file.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            if (image.Length < length)
            {
                await image.DisposeAsync().ConfigureAwait(false);
                throw new UrlDiskException($"'{path}' is {image.Length} bytes, smaller than the image ({length} bytes)");
            }

            return new Qcow2ConvertTarget(image, path, null, compress);
        }

        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(dir))
        {
            throw new UrlDiskException($"cannot create '{path}': directory '{dir}' does not exist");
        }

        string temp = Path.Combine(dir, $".{Path.GetFileName(path)}.urldisk-{Guid.NewGuid():N}.part");
        try
        {
            var image = await Qcow2Creator.CreateAndOpenAsync(temp, (length + 511) & ~511L, options, orderWrites: false, cancellationToken).ConfigureAwait(false);
            return new Qcow2ConvertTarget(image, path, temp, compress);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        => _image.ReadAsync(offset, buffer, cancellationToken);

    /// <summary>Data bytes written so far (zeros the copier skipped or wrote as zeroes are not counted).</summary>
    public long DataWritten => Interlocked.Read(ref _dataWritten);

    private long _dataWritten;

    protected override async ValueTask WriteCoreAsync(long offset, ReadOnlyMemory<byte> data, WriteOptions options, CancellationToken cancellationToken)
    {
        Interlocked.Add(ref _dataWritten, data.Length);
        int cs = _image.ClusterSize;
        while (data.Length > 0)
        {
            long within = offset & (cs - 1);
            int n = (int)Math.Min(data.Length, cs - within);
            var part = data[..n];
            bool wholeCluster = within == 0 && (n == cs || offset + n == Length);
            if (_compress && wholeCluster)
            {
                if (!IsZeroed || part.Span.ContainsAnyExcept((byte)0))
                {
                    await _image.WriteCompressedAsync(offset / cs, part, cancellationToken).ConfigureAwait(false);
                }
            }
            else
            {
                await _image.WriteAsync(offset, part, options, cancellationToken).ConfigureAwait(false);
            }

            offset += n;
            data = data[n..];
        }
    }

    protected override ValueTask WriteZeroesCoreAsync(long offset, long length, WriteOptions options, CancellationToken cancellationToken)
        => _image.WriteZeroesAsync(offset, length, options, cancellationToken);

    public override ValueTask FlushAsync(CancellationToken cancellationToken = default) => _image.FlushAsync(cancellationToken);

    /// <summary>Closes the image and moves a new one into place.</summary>
    public async ValueTask CommitAsync()
    {
        await _image.DisposeAsync().ConfigureAwait(false);
        if (_tempPath is not null)
        {
            File.Move(_tempPath, _path, overwrite: true);
        }

        _committed = true;
    }

    protected override async ValueTask DisposeCoreAsync()
    {
        await _image.DisposeAsync().ConfigureAwait(false);
        if (!_committed && _tempPath is not null)
        {
            try
            {
                File.Delete(_tempPath);
            }
            catch (IOException)
            {
            }
        }
    }
}
