namespace UrlDisk;

/// <summary>Flags of a write or write-zeroes request (as NBD's command flags).</summary>
[Flags]
public enum WriteOptions
{
    /// <summary>A plain write.</summary>
    None = 0,

    /// <summary>Force unit access: the write is durable when it completes.</summary>
    ForceUnitAccess = 1,

    /// <summary>For write-zeroes: do not punch a hole, allocate zeros.</summary>
    NoHole = 2,

    /// <summary>For write-zeroes: fail with <see cref="NotSupportedException"/> unless zeroing is fast.</summary>
    FastZero = 4,
}
