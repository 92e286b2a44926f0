using UrlDisk.Specs;

namespace UrlDisk.Opening;

/// <summary>
/// The layers over one protocol node: which options belong to the source and which to a layer, the unknown-option
/// check, and the stacking, bottom-up in registration order.
/// </summary>
internal sealed class LayerStack
{
    private readonly List<(ILayerDriver Layer, object Settings)> _planned;

    private LayerStack(OptionTree sourceNode, List<(ILayerDriver, object)> planned)
    {
        SourceNode = sourceNode;
        _planned = planned;
    }

    /// <summary>The protocol node without the layers' options: what the protocol driver sees.</summary>
    public OptionTree SourceNode { get; }

    /// <summary>The layers that can sit over <paramref name="driver"/>'s sources, in stacking order.</summary>
    public static IEnumerable<ILayerDriver> For(IProtocolDriver driver, IEnumerable<ILayerDriver> layers)
        => layers.Where(l => l.AppliesTo(driver.Traits));

    /// <summary>Every option a protocol node of <paramref name="driver"/> accepts: the source's and its layers'.</summary>
    public static IReadOnlyCollection<string> KnownOptions(IProtocolDriver driver, IEnumerable<ILayerDriver> layers)
        => [.. driver.OptionNames.Concat(For(driver, layers).SelectMany(l => l.OptionNames)).Distinct(StringComparer.Ordinal)];

    /// <summary>
    /// Rejects an option neither the source nor one of its layers declared (naming it and listing the known ones),
    /// lets every layer validate its own, and splits them off the node: all before anything opens.
    /// </summary>
    public static LayerStack Plan(OptionTree node, IProtocolDriver driver, IEnumerable<ILayerDriver> layers)
    {
        var known = KnownOptions(driver, layers);
        // header is repeatable: header.0, header.1 … are its values, not unknown options; nbd checks its own server.*.
        node.RejectUnknown(driver.Name, known, [.. driver.OptionNames.Where(o => o is "header" or "server")]);
        var planned = new List<(ILayerDriver, object)>();
        var sourceNode = node.Clone();
        foreach (var layer in For(driver, layers))
        {
            planned.Add((layer, layer.Validate(node, driver.Name)));
            foreach (var option in layer.OptionNames.Where(o => !driver.OptionNames.Contains(o)))
            {
                sourceNode[option] = null;
            }
        }

        return new LayerStack(sourceNode, planned);
    }

    /// <summary>Stacks the planned layers over <paramref name="source"/>, taking ownership of it (disposed on failure).</summary>
    public async ValueTask<IBlockDevice> StackAsync(IBlockDevice source, LayerContext context, CancellationToken cancellationToken)
    {
        var device = source;
        try
        {
            foreach (var (layer, settings) in _planned)
            {
                device = await layer.StackAsync(device, settings, context, cancellationToken).ConfigureAwait(false);
            }

            return device;
        }
        catch
        {
            await device.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
