using UrlDisk.Layers.Prefetch;

namespace UrlDisk.Fuzz.Targets;

/// <summary>
/// A boot profile file: parse it; a profile that parses must encode back to the same bytes, and its ranges must
/// plan into disjoint pieces inside the image.
/// </summary>
public sealed class BootProfileTarget : IFuzzTarget
{
    public string Name => "boot-profile";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (!BootProfile.TryRead(input, out var profile, out string error, out _))
        {
            if (error.Length == 0)
            {
                throw new InvalidOperationException("a refused profile must say why");
            }

            return;
        }

        if (!profile!.Encode().AsSpan().SequenceEqual(input))
        {
            throw new InvalidOperationException("a parsed profile does not encode back to its bytes");
        }

        long end = -1;
        foreach (var piece in PrefetchPlan.Build(profile.Ranges).OrderBy(p => p.Offset))
        {
            if (piece.Offset < end || piece.Length <= 0 || piece.Length > PrefetchPlan.MaxSegment || piece.End > profile.ImageLength)
            {
                throw new InvalidOperationException($"bad plan piece {piece}");
            }

            end = piece.End;
        }
    }
}
