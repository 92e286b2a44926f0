using UrlDisk.Specs;

namespace UrlDisk.Opening;

/// <summary>
/// A layer the opener stacks over a bare source (fill cache, readahead cache, …): it owns some options of the
/// protocol node, validates them before anything opens, and wraps the device below when they, or what that device
/// can do, ask for it. Register one in <see cref="Drivers.Layers"/>; the order there is the stacking order.
/// </summary>
internal interface ILayerDriver
{
    /// <summary>The layer's name, for messages and logs.</summary>
    string Name { get; }

    /// <summary>Options of the protocol node this layer owns (a source never sees them).</summary>
    IReadOnlyCollection<string> OptionNames { get; }

    /// <summary>True when this layer can sit over sources with <paramref name="traits"/>; its options are unknown options elsewhere.</summary>
    bool AppliesTo(SourceTraits traits);

    /// <summary>Checks this layer's options on <paramref name="node"/> (before the source opens) and returns what <see cref="StackAsync"/> needs.</summary>
    object Validate(OptionTree node, string driver);

    /// <summary>
    /// Returns <paramref name="below"/> wrapped, taking ownership of it, or unchanged. On failure <paramref name="below"/>
    /// is still the caller's. Capabilities of the source are found on the device (e.g. <see cref="LayerContext.Find{T}"/>).
    /// </summary>
    ValueTask<IBlockDevice> StackAsync(IBlockDevice below, object settings, LayerContext context, CancellationToken cancellationToken);
}

/// <summary>A layer with typed settings: the one shape every layer has.</summary>
internal abstract class LayerDriver<TSettings> : ILayerDriver
    where TSettings : notnull
{
    public abstract string Name { get; }

    public abstract IReadOnlyCollection<string> OptionNames { get; }

    public abstract bool AppliesTo(SourceTraits traits);

    public abstract TSettings Validate(OptionTree node, string driver);

    public abstract ValueTask<IBlockDevice> StackAsync(IBlockDevice below, TSettings settings, LayerContext context, CancellationToken cancellationToken);

    object ILayerDriver.Validate(OptionTree node, string driver) => Validate(node, driver);

    ValueTask<IBlockDevice> ILayerDriver.StackAsync(IBlockDevice below, object settings, LayerContext context, CancellationToken cancellationToken)
        => StackAsync(below, (TSettings)settings, context, cancellationToken);
}

/// <summary>What a layer knows while it is stacked: the protocol driver's name and the open's context.</summary>
internal sealed record LayerContext(string Driver, OpenContext Open)
{
    /// <summary>The first device from <paramref name="device"/> down the <see cref="BlockDeviceInfo.Child"/> chain that is a <typeparamref name="T"/>.</summary>
    public static T? Find<T>(IBlockDevice device)
        where T : class
    {
        for (IBlockDevice? d = device; d is not null; d = d.Info.Child)
        {
            if (d is T found)
            {
                return found;
            }
        }

        return null;
    }
}
