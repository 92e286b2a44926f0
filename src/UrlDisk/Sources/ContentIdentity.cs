using System.Security.Cryptography;
using System.Text;

namespace UrlDisk.Sources;

/// <summary>
/// What a remote file is, for state that outlives one process (the disk cache, boot profiles): where it is after
/// redirects (without credentials) and the validators that change when its bytes change. Without a validator a file
/// cannot be told from a changed one, so <see cref="CanPersist"/> is false and nothing persistent may trust it.
/// </summary>
/// <param name="Location">The final URL, without user info; the query is kept (it may name the file).</param>
/// <param name="Length">The file's size in bytes.</param>
/// <param name="Validators">A canonical string of the validators (ETag, Last-Modified, FTP MDTM), or null when there are none.</param>
internal sealed record ContentIdentity(string Location, long Length, string? Validators)
{
    /// <summary>True when the file has a validator, so a later open can tell whether it changed.</summary>
    public bool CanPersist => Validators is not null;

    /// <summary>A stable file-name-safe key (SHA-256 hex) of location, size and validators; no secret can be read back from it.</summary>
    public string Key => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{Location}\n{Length}\n{Validators}")));

    /// <summary>The same location with any other version of the file: a key for "this URL", to drop entries of older versions.</summary>
    public string LocationKey => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Location)));

    /// <summary>The identity of the source under <paramref name="device"/>: the first device down the <see cref="BlockDeviceInfo.Child"/> chain that has one.</summary>
    public static ContentIdentity? Find(IBlockDevice device)
    {
        for (IBlockDevice? d = device; d is not null; d = d.Info.Child)
        {
            if (d is IHasContentIdentity { ContentIdentity: { } identity })
            {
                return identity;
            }
        }

        return null;
    }
}

/// <summary>A source that knows which file (and which version of it) it reads.</summary>
internal interface IHasContentIdentity
{
    /// <summary>The file's identity, or null when the source cannot tell (e.g. no size).</summary>
    ContentIdentity? ContentIdentity { get; }
}
