namespace UrlDisk.Layers;

/// <summary>
/// What a protocol driver returns for a file it can only send whole and in order (TFTP; HTTP or FTP without byte
/// ranges): a device that reads nothing itself but carries the <see cref="ISequentialSource"/> up to the opener,
/// which stacks a <see cref="FillCache"/> on it (<see cref="FillCacheLayer"/>).
/// </summary>
internal sealed class SequentialSourceDevice(ISequentialSource source, int retries, string logCategory) : BlockDevice
{
    private readonly long _length = source.Length ?? 0;
    private readonly string _displayName = source.DisplayName;
    private ISequentialSource? _source = source;

    public override long Length => _length;

    public override BlockDeviceInfo Info { get; } = new()
    {
        Driver = source.Protocol,
        DisplayName = source.DisplayName,
        Details = source.Details,
    };

    /// <summary>How many failed whole-file transfers in a row may start again (the source's <c>retries</c>).</summary>
    public int Retries { get; } = retries;

    /// <summary>The log category of the source's protocol ("UrlDisk.Http"), so the fill cache logs beside it.</summary>
    public string LogCategory { get; } = logCategory;

    /// <summary>Hands the source over (to the fill cache, which then owns it); this device then holds nothing.</summary>
    public ISequentialSource Take()
        => Interlocked.Exchange(ref _source, null) ?? throw new InvalidOperationException($"{_displayName}: the sequential source was already taken");

    protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        => throw new InvalidOperationException($"{_displayName}: the source cannot read byte ranges and no fill cache was stacked over it");

    protected override ValueTask DisposeCoreAsync() => Interlocked.Exchange(ref _source, null)?.DisposeAsync() ?? ValueTask.CompletedTask;
}
