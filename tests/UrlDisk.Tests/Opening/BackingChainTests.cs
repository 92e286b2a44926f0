using UrlDisk.Opening;

namespace UrlDisk.Tests.Opening;

public class BackingChainTests
{
    [Fact]
    public void A_relative_name_resolves_against_the_overlay_and_opens_one_level_deeper_read_only()
    {
        var overlay = new OpenContext { Writable = true, CopyOnRead = true, BaseLocation = "http://h/dir/top.qcow2" };
        var backing = BackingChain.Resolve("base.raw", "raw", overlay, "qcow2");
        Assert.Equal("http://h/dir/base.raw", backing.Location);
        Assert.Equal(1, backing.Context.Depth);
        Assert.False(backing.Context.Writable);
        Assert.False(backing.Context.CopyOnRead);
        Assert.Contains("http://h/dir/top.qcow2", backing.Context.Chain);
    }

    [Fact]
    public void A_name_already_in_the_chain_is_a_loop()
    {
        var overlay = new OpenContext { BaseLocation = "http://h/b.qcow2", Chain = new HashSet<string> { "http://h/a.qcow2" } };
        var e = Assert.Throws<ImageFormatException>(() => BackingChain.Resolve("a.qcow2", null, overlay, "qcow2"));
        Assert.Equal("qcow2: backing chain loop: 'http://h/a.qcow2' is already in the chain", e.Message);
    }

    [Fact]
    public void An_image_naming_itself_is_a_loop()
    {
        var overlay = new OpenContext { BaseLocation = "/images/self.vhd" };
        var e = Assert.Throws<ImageFormatException>(() => BackingChain.Resolve("self.vhd", "vpc", overlay, "vpc"));
        Assert.StartsWith("vpc: backing chain loop", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_chain_deeper_than_the_limit_is_refused()
    {
        var atLimit = new OpenContext { BaseLocation = "http://h/63.qcow2", Depth = OpenContext.MaxChainDepth - 1 };
        Assert.Equal(OpenContext.MaxChainDepth, BackingChain.Resolve("64.qcow2", null, atLimit, "qcow2").Context.Depth);

        var past = atLimit with { Depth = OpenContext.MaxChainDepth };
        var e = Assert.Throws<ImageFormatException>(() => BackingChain.Resolve("65.qcow2", null, past, "vmdk"));
        Assert.Equal($"vmdk: backing chain is deeper than {OpenContext.MaxChainDepth} images", e.Message);
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("file:///etc/passwd")]
    [InlineData("json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\",\"filename\":\"/etc/passwd\"}}")]
    public void A_remote_image_naming_a_local_file_is_refused_without_credentials_in_the_message(string name)
    {
        var overlay = new OpenContext { BaseLocation = "https://user:secret@h/top.qcow2" };
        var e = Assert.Throws<ImageFormatException>(() => BackingChain.Resolve(name, null, overlay, "qcow2"));
        Assert.StartsWith("qcow2: the remote image 'https://", e.Message, StringComparison.Ordinal);
        Assert.Contains("names a local backing file", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_local_image_may_name_a_remote_backing_file_and_a_remote_one_another_remote()
    {
        Assert.Equal("http://h/base.raw", BackingChain.Resolve("http://h/base.raw", null, new OpenContext { BaseLocation = "/local/top.qcow2" }, "qcow2").Location);
        Assert.Equal("ftp://g/base.raw", BackingChain.Resolve("ftp://g/base.raw", null, new OpenContext { BaseLocation = "http://h/top.qcow2" }, "qcow2").Location);
    }

    [Fact]
    public async Task Resolving_opens_nothing_the_backing_image_opens_on_first_use()
    {
        await using var backing = BackingChain.Resolve("/nonexistent/dir/base.raw", "raw", new OpenContext { BaseLocation = "/nonexistent/dir/top.qcow2" }, "qcow2");
        Assert.Equal("/nonexistent/dir/base.raw", backing.Location);
        await Assert.ThrowsAnyAsync<UrlDiskException>(async () => await backing.GetAsync(CancellationToken.None));
    }
}
