using UrlDisk.Layers;
using UrlDisk.Opening;
using UrlDisk.Sources;
using UrlDisk.Specs;
using UrlDisk.Tests.Core;

namespace UrlDisk.Tests.Opening;

public class LayerRegistryTests
{
    /// <summary>A protocol driver that opens nothing: the registry only needs its name, options and traits.</summary>
    private sealed class Protocol(string name, SourceTraits traits, params string[] options) : IProtocolDriver
    {
        public string Name => name;
        public IReadOnlyCollection<string> Schemes => [name];
        public IReadOnlyCollection<string> OptionNames => options;
        public SourceTraits Traits => traits;

        public ValueTask<IBlockDevice> OpenAsync(OptionTree node, OpenContext context, CancellationToken cancellationToken)
            => throw new InvalidOperationException("not opened in these tests");
    }

    /// <summary>A layer registered by a test: owns <c>tag</c>, refuses an empty one, and stacks only when it is given.</summary>
    private sealed class TagLayer : LayerDriver<TagLayer.Settings>
    {
        public sealed record Settings(string? Tag);

        public override string Name => "tag";
        public override IReadOnlyCollection<string> OptionNames { get; } = ["tag"];
        public override bool AppliesTo(SourceTraits traits) => (traits & SourceTraits.Remote) != 0;

        public override Settings Validate(OptionTree node, string driver)
            => node["tag"] is { Length: 0 } ? throw new OptionException($"{driver}: option 'tag' is empty; give a word") : new(node["tag"]);

        public override ValueTask<IBlockDevice> StackAsync(IBlockDevice below, Settings settings, LayerContext context, CancellationToken cancellationToken)
            => new(settings.Tag is null ? below : new Tagged(below, settings.Tag));
    }

    private sealed class Tagged(IBlockDevice inner, string tag) : BlockDevice
    {
        public string Tag => tag;
        public override long Length => inner.Length;
        public override BlockDeviceInfo Info { get; } = inner.Info with { Driver = "tag", Child = inner };

        protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
            => inner.ReadAsync(offset, buffer, cancellationToken);
    }

    /// <summary>An in-memory source that says it fetches ranges over a network, as http and ftp do.</summary>
    private sealed class RemoteMemory(byte[] data) : BlockDevice, IRemoteRangeSource
    {
        public override long Length => data.Length;
        public override BlockDeviceInfo Info { get; } = new() { Driver = "remote" };

        protected override ValueTask ReadCoreAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken)
        {
            data.AsSpan((int)offset, buffer.Length).CopyTo(buffer.Span);
            return ValueTask.CompletedTask;
        }
    }

    private sealed class WholeFile(byte[] data) : ISequentialSource
    {
        public string Protocol => "whole";
        public string DisplayName => "whole://x";
        public long? Length => data.Length;
        public IReadOnlyDictionary<string, object?> Details { get; } = new Dictionary<string, object?> { ["protocol"] = "whole" };

        public Task CopyToAsync(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> sink, CancellationToken cancellationToken)
            => sink(data, cancellationToken).AsTask();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private static readonly Protocol Remote = new("remote", SourceTraits.Remote | SourceTraits.Ranges | SourceTraits.Sequential, "url", "timeout");
    private static readonly ILayerDriver[] Registered = [new FillCacheLayer(), new ReadaheadLayer(), new TagLayer()];
    private static readonly LayerContext Context = new("remote", new OpenContext());

    private static OptionTree Node(params (string Key, string Value)[] pairs)
        => new(pairs.Select(p => KeyValuePair.Create(p.Key, p.Value)));

    [Fact]
    public void An_option_nobody_declared_is_refused_naming_it_and_listing_source_and_layer_options()
    {
        var e = Assert.Throws<OptionException>(() => LayerStack.Plan(Node(("url", "remote://h/x"), ("readahaed", "64k")), Remote, Registered));
        Assert.StartsWith("remote: unknown option 'readahaed'; known options: ", e.Message, StringComparison.Ordinal);
        Assert.EndsWith("cache-size, keep-cache, readahead, tag, timeout, url", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_layers_options_are_unknown_on_a_source_it_does_not_apply_to()
    {
        var local = new Protocol("local", SourceTraits.None, "filename");
        var e = Assert.Throws<OptionException>(() => LayerStack.Plan(Node(("filename", "/x"), ("readahead", "64k")), local, Registered));
        Assert.Equal("local: unknown option 'readahead'; known options: filename", e.Message);
    }

    [Fact]
    public async Task The_real_opener_refuses_a_layer_option_on_a_local_file_before_opening_anything()
    {
        var e = await Assert.ThrowsAsync<OptionException>(async () =>
            await ImageOpener.OpenProtocolAsync(Node(("driver", "file"), ("filename", "/nonexistent/x.img"), ("readahead", "64k")), new OpenContext(), CancellationToken.None));
        Assert.Equal("file: unknown option 'readahead'; known options: filename", e.Message);
    }

    [Fact]
    public void A_registered_layer_owns_its_option_the_source_never_sees_it()
    {
        var plan = LayerStack.Plan(Node(("url", "remote://h/x"), ("tag", "blue"), ("readahead", "64k"), ("timeout", "3")), Remote, Registered);
        Assert.Equal(new[] { "timeout", "url" }, plan.SourceNode.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_registered_layer_validates_its_option_before_anything_opens()
    {
        var e = Assert.Throws<OptionException>(() => LayerStack.Plan(Node(("url", "remote://h/x"), ("tag", "")), Remote, Registered));
        Assert.Equal("remote: option 'tag' is empty; give a word", e.Message);
    }

    [Theory]
    [InlineData("1000", "remote: readahead 1000 is not a multiple of 512 (sizes take T/G/M/K/k/b suffixes; default 256k)")]
    [InlineData("512M", "remote: readahead 536870912 is too large; at most 256M")]
    public void The_readahead_layer_validates_readahead_with_the_messages_users_know(string value, string message)
    {
        var e = Assert.Throws<OptionException>(() => LayerStack.Plan(Node(("url", "remote://h/x"), ("readahead", value)), Remote, Registered));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public async Task A_layer_is_stacked_only_when_its_option_asks_for_it()
    {
        var without = await LayerStack.Plan(Node(("url", "remote://h/x")), Remote, [new TagLayer()]).StackAsync(new MemoryBlockDevice(new byte[512]), Context, CancellationToken.None);
        Assert.IsType<MemoryBlockDevice>(without);

        var with = await LayerStack.Plan(Node(("url", "remote://h/x"), ("tag", "blue")), Remote, [new TagLayer()]).StackAsync(new MemoryBlockDevice(new byte[512]), Context, CancellationToken.None);
        Assert.Equal("blue", Assert.IsType<Tagged>(with).Tag);
    }

    [Fact]
    public async Task The_readahead_cache_is_stacked_over_a_source_that_fetches_ranges_and_takes_its_options()
    {
        var data = Enumerable.Range(0, 300_000).Select(i => (byte)i).ToArray();
        var plan = LayerStack.Plan(Node(("url", "remote://h/x"), ("readahead", "64k"), ("cache-size", "1M")), Remote, Registered);

        await using var local = await plan.StackAsync(new MemoryBlockDevice(data), Context, CancellationToken.None);
        Assert.IsType<MemoryBlockDevice>(local);

        await using var remote = await plan.StackAsync(new RemoteMemory(data), Context, CancellationToken.None);
        Assert.IsType<ReadaheadCache>(remote);
        Assert.Equal(64L * 1024, remote.Info.Details["readahead"]);
        Assert.Equal(1L << 20, remote.Info.Details["cache-size"]);
        var buffer = new byte[1000];
        await remote.ReadAsync(200_000, buffer);
        Assert.Equal(data.AsSpan(200_000, 1000).ToArray(), buffer);

        // readahead=0 asks for no cache: every read goes to the source as it is.
        var none = LayerStack.Plan(Node(("url", "remote://h/x"), ("readahead", "0")), Remote, Registered);
        await using var direct = await none.StackAsync(new RemoteMemory(data), Context, CancellationToken.None);
        Assert.IsType<RemoteMemory>(direct);
    }

    [Fact]
    public async Task A_source_without_ranges_gets_the_fill_cache_and_no_readahead_cache()
    {
        var data = Enumerable.Range(0, 100_000).Select(i => (byte)(i * 7)).ToArray();
        var plan = LayerStack.Plan(Node(("url", "remote://h/x")), Remote, Registered);
        var dir = Directory.CreateTempSubdirectory("urldisk-layers-");
        try
        {
            var context = Context with { Open = new OpenContext { CacheDirectory = dir.FullName } };
            await using (var device = await plan.StackAsync(new SequentialSourceDevice(new WholeFile(data), retries: 0, "UrlDisk.Test"), context, CancellationToken.None))
            {
                Assert.IsType<FillCache>(device);
                var buffer = new byte[5000];
                await device.ReadAsync(90_000, buffer);
                Assert.Equal(data.AsSpan(90_000, 5000).ToArray(), buffer);
            }

            Assert.Empty(dir.GetFiles());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_layer_that_fails_leaves_nothing_open()
    {
        var plan = LayerStack.Plan(Node(("url", "remote://h/x")), Remote, Registered);
        var source = new SequentialSourceDevice(new WholeFile(new byte[10]), retries: 0, "UrlDisk.Test");
        var blocked = Path.Combine(Path.GetTempPath(), $"urldisk-not-a-dir-{Guid.NewGuid():n}");
        await File.WriteAllTextAsync(blocked, "a file where the cache directory should be");
        try
        {
            await Assert.ThrowsAsync<UrlDiskException>(async () =>
                await plan.StackAsync(source, Context with { Open = new OpenContext { CacheDirectory = blocked } }, CancellationToken.None));
            Assert.Throws<InvalidOperationException>(() => source.Take());
        }
        finally
        {
            File.Delete(blocked);
        }
    }
}
