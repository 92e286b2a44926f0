using UrlDisk.Specs;

namespace UrlDisk.Tests.Specs;

public class SpecParserTests
{
    private static Dictionary<string, string> Flat(OptionTree t) => t.Pairs.ToDictionary(p => p.Key, p => p.Value);

    /// <summary>The value of <c>-o backing_file=…</c> after qemu's option splitting (<c>,,</c> → <c>,</c>).</summary>
    private static string BackingFileValue(string dashO)
    {
        var item = Assert.Single(SpecParser.SplitKeyValue(dashO));
        Assert.StartsWith("backing_file=", item, StringComparison.Ordinal);
        return item["backing_file=".Length..];
    }

    [Fact]
    public void Qemu_doc_cloud_image_backing_file_with_doubled_commas()
    {
        // Verbatim from QEMU's device-url-syntax docs (qemu-img create -o backing_file=…).
        const string dashO = """backing_file=json:{"file.driver":"http",, "file.url":"http://example.com/x.qcow2",, "file.readahead":"64k"}""";
        var tree = SpecParser.ParseFilename(BackingFileValue(dashO));
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["file.driver"] = "http",
                ["file.url"] = "http://example.com/x.qcow2",
                ["file.readahead"] = "64k",
            },
            Flat(tree));
        Assert.Equal(64 * 1024, tree.Child("file").GetSize("readahead", 256 * 1024));
    }

    [Fact]
    public void Qemu_doc_vsphere_example()
    {
        const string spec = """json:{"file.driver":"https","file.url":"https://user:password@vsphere.example.com/folder/test/test-flat.vmdk?dcPath=Datacenter&dsName=datastore1","file.sslverify":"off","file.readahead":"64k","file.timeout":10}""";
        var tree = SpecParser.ParseFilename(spec);
        var file = tree.Child("file");
        Assert.Equal("https", file["driver"]);
        Assert.Equal("https://user:password@vsphere.example.com/folder/test/test-flat.vmdk?dcPath=Datacenter&dsName=datastore1", file["url"]);
        Assert.False(file.GetBool("sslverify", true));
        Assert.Equal(65536, file.GetSize("readahead", 0));
        Assert.Equal("10", file["timeout"]);
        Assert.Equal(10.0, file.GetSeconds("timeout", 5, 10000));
        Assert.Equal("file.", file.Path);
        Assert.Equal(5, tree.Count);
    }

    [Fact]
    public void Qemu_doc_vsphere_example_inside_dash_o_with_doubled_commas()
    {
        const string dashO = """backing_file=json:{"file.driver":"https",, "file.url":"https://user:password@vsphere.example.com/folder/test/test-flat.vmdk?dcPath=Datacenter&dsName=datastore1",, "file.sslverify":"off",, "file.readahead":"64k",, "file.timeout":10}""";
        var direct = SpecParser.ParseFilename("""json:{"file.driver":"https","file.url":"https://user:password@vsphere.example.com/folder/test/test-flat.vmdk?dcPath=Datacenter&dsName=datastore1","file.sslverify":"off","file.readahead":"64k","file.timeout":10}""");
        Assert.Equal(Flat(direct), Flat(SpecParser.ParseFilename(BackingFileValue(dashO))));
    }

    [Fact]
    public void Nested_and_dotted_json_give_the_same_tree()
    {
        var nested = SpecParser.ParseFilename("""json:{"driver":"raw","file":{"driver":"http","url":"http://h/a.img","readahead":"1M","sslverify":false}}""");
        var dotted = SpecParser.ParseFilename("""json:{"driver":"raw","file.driver":"http","file.url":"http://h/a.img","file.readahead":"1M","file.sslverify":false}""");
        var expected = new Dictionary<string, string>
        {
            ["driver"] = "raw",
            ["file.driver"] = "http",
            ["file.url"] = "http://h/a.img",
            ["file.readahead"] = "1M",
            ["file.sslverify"] = "off",
        };
        Assert.Equal(expected, Flat(nested));
        Assert.Equal(expected, Flat(dotted));
    }

    [Fact]
    public void Json_booleans_become_on_and_off_and_numbers_keep_their_text()
    {
        var tree = SpecParser.ParseFilename("""json:{"file":{"driver":"http","url":"http://h/x","force-range":true,"sslverify":false,"connections":4,"timeout":2.5}}""");
        var file = tree.Child("file");
        Assert.Equal(("on", "off", "4", "2.5"), (file["force-range"], file["sslverify"], file["connections"], file["timeout"]));
        Assert.True(file.GetBool("force-range", false));
        Assert.Equal(4, file.GetInt("connections", 8, 1, 64));
        Assert.Equal(2.5, file.GetSeconds("timeout", 5, 10000));
    }

    [Fact]
    public void A_string_where_a_node_is_expected_is_its_filename()
    {
        var tree = SpecParser.ParseFilename("""json:{"driver":"qcow2","file":"http://h/a.qcow2"}""");
        Assert.Equal(new Dictionary<string, string> { ["driver"] = "qcow2", ["file.filename"] = "http://h/a.qcow2" }, Flat(tree));
    }

    [Fact]
    public void The_same_option_nested_and_dotted_is_rejected()
    {
        var e = Assert.Throws<OptionException>(() => SpecParser.ParseFilename("""json:{"file":{"url":"http://a/x"},"file.url":"http://b/x"}"""));
        Assert.Contains("file.url", e.Message, StringComparison.Ordinal);
        Assert.Contains("twice", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("json:{\"file.driver\":\"http\",}")]
    [InlineData("json:{file.driver:http}")]
    [InlineData("json:{\"a\":1")]
    public void Malformed_json_is_an_option_error_naming_json(string spec)
    {
        var e = Assert.Throws<OptionException>(() => SpecParser.ParseFilename(spec));
        Assert.Contains("JSON", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("json:[1,2]")]
    [InlineData("json:\"http://h/x\"")]
    public void Json_that_is_not_an_object_is_rejected(string spec)
    {
        var e = Assert.Throws<OptionException>(() => SpecParser.ParseFilename(spec));
        Assert.Contains("object", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_null_is_rejected_naming_the_option()
    {
        var e = Assert.Throws<OptionException>(() => SpecParser.ParseFilename("""json:{"file.url":null}"""));
        Assert.Contains("file.url", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://example.com/disk.img")]
    [InlineData("https://user:pw@example.com:8443/a/b.qcow2?sig=x&y=1")]
    [InlineData("ftp://example.com/pub/x.iso")]
    [InlineData("/var/lib/images/a.img")]
    [InlineData("relative/dir/a.img")]
    [InlineData("file:///tmp/a%20b.img")]
    public void A_plain_url_or_path_is_the_protocol_filename(string spec)
    {
        Assert.Equal(new Dictionary<string, string> { ["file.filename"] = spec }, Flat(SpecParser.ParseFilename(spec)));
    }

    [Fact]
    public void An_empty_filename_is_rejected_with_what_is_allowed()
    {
        var e = Assert.Throws<OptionException>(() => SpecParser.ParseFilename(""));
        Assert.Contains("URL", e.Message, StringComparison.Ordinal);
        Assert.Contains("json:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Key_value_options_with_doubled_comma_as_a_literal_comma()
    {
        var tree = SpecParser.ParseKeyValue("driver=raw,file.driver=https,file.url=https://h/a,,b.img?x=1,,2,file.sslverify=off,file.readahead=64k");
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["driver"] = "raw",
                ["file.driver"] = "https",
                ["file.url"] = "https://h/a,b.img?x=1,2",
                ["file.sslverify"] = "off",
                ["file.readahead"] = "64k",
            },
            Flat(tree));
    }

    [Fact]
    public void Key_value_file_shorthand_is_the_filename()
    {
        var tree = SpecParser.ParseKeyValue("driver=raw,file=http://h/x.img");
        Assert.Equal(new Dictionary<string, string> { ["driver"] = "raw", ["file.filename"] = "http://h/x.img" }, Flat(tree));
    }

    [Fact]
    public void Key_value_equals_sign_inside_a_value_is_kept()
    {
        var tree = SpecParser.ParseKeyValue("file.driver=http,file.url=http://h/x?a=b&c=d");
        Assert.Equal("http://h/x?a=b&c=d", tree["file.url"]);
    }

    [Theory]
    [InlineData("driver=raw,novalue")]
    [InlineData("=x")]
    public void Key_value_item_without_key_and_value_is_rejected(string text)
    {
        var e = Assert.Throws<OptionException>(() => SpecParser.ParseKeyValue(text));
        Assert.Contains("key=value", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Key_value_duplicate_key_is_rejected()
    {
        var e = Assert.Throws<OptionException>(() => SpecParser.ParseKeyValue("file.url=http://a/x,file.url=http://b/x"));
        Assert.Contains("file.url", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Key_value_error_never_shows_the_password()
    {
        var e = Assert.Throws<OptionException>(() => SpecParser.ParseKeyValue("file.url=http://bob:hunter2@h/x,broken"));
        Assert.DoesNotContain("hunter2", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a,,b", new[] { "a,b" })]
    [InlineData("a,b", new[] { "a", "b" })]
    [InlineData("a,,,b", new[] { "a,", "b" })]
    [InlineData("a,,,,b", new[] { "a,,b" })]
    [InlineData("a,", new[] { "a" })]
    [InlineData("", new string[0])]
    public void Split_key_value_treats_doubled_commas_as_literal(string text, string[] expected)
    {
        Assert.Equal(expected, SpecParser.SplitKeyValue(text));
    }
}
