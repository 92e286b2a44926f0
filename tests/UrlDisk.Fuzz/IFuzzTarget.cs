namespace UrlDisk.Fuzz;

/// <summary>
/// One fuzz harness: feeds arbitrary bytes to one parser or decoder. A harness may throw only the errors the code
/// promises for bad input (<see cref="IsExpected"/>); anything else, a hang or a runaway allocation is a finding.
/// </summary>
public interface IFuzzTarget
{
    /// <summary>Name on the command line and the corpus folder's name.</summary>
    string Name { get; }

    void Run(ReadOnlySpan<byte> input);

    /// <summary>True for the typed errors bad input is allowed to produce.</summary>
    bool IsExpected(Exception error) => error is UrlDiskException;
}
