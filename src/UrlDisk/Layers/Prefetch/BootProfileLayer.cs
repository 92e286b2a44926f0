using UrlDisk.Opening;
using UrlDisk.Specs;

namespace UrlDisk.Layers.Prefetch;

/// <summary>
/// Stacks the boot profile's recording and/or prefetching layer (<see cref="BootProfileRequest"/>, asked for by
/// <c>serve --record-profile/--prefetch-profile</c> or a profile directory through <see cref="OpenContext"/>) last,
/// over the caches and under the format, so it sees the file offsets a format reads. It owns no spec option.
/// </summary>
internal sealed class BootProfileLayer : LayerDriver<BootProfileLayer.Settings>
{
    internal sealed record Settings;

    private static readonly Settings None = new();

    public override string Name => "boot-profile";

    public override IReadOnlyCollection<string> OptionNames { get; } = [];

    public override bool AppliesTo(SourceTraits traits) => (traits & SourceTraits.Remote) != 0;

    public override Settings Validate(OptionTree node, string driver) => None;

    public override ValueTask<IBlockDevice> StackAsync(IBlockDevice below, Settings settings, LayerContext context, CancellationToken cancellationToken)
        => context.Open.BootProfile is { } profile ? profile.ApplyAsync(below, context.Open, cancellationToken) : new(below);
}
