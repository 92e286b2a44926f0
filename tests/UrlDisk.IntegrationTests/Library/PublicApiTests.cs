using System.Reflection;
using System.Xml.Linq;

namespace UrlDisk.IntegrationTests.Library;

/// <summary>The PublicApiAnalyzers guard the surface at build time; these check the guard is wired up and the surface is what the files say.</summary>
public sealed class PublicApiTests
{
    private static readonly Assembly Library = typeof(IBlockDevice).Assembly;

    private static HashSet<string> ListedLines()
    {
        string dir = Path.Combine(Repository.Root, "src", "UrlDisk");
        return File.ReadLines(Path.Combine(dir, "PublicAPI.Shipped.txt")).Concat(File.ReadLines(Path.Combine(dir, "PublicAPI.Unshipped.txt"))).ToHashSet(StringComparer.Ordinal);
    }

    [Fact]
    public void The_analyzer_is_referenced_with_both_api_files()
    {
        var project = XDocument.Load(Path.Combine(Repository.Root, "src", "UrlDisk", "UrlDisk.csproj"));
        Assert.Contains(project.Descendants("PackageReference"), e => (string?)e.Attribute("Include") == "Microsoft.CodeAnalysis.PublicApiAnalyzers");
        var additional = project.Descendants("AdditionalFiles").Select(e => (string?)e.Attribute("Include")).ToList();
        Assert.Contains("PublicAPI.Shipped.txt", additional);
        Assert.Contains("PublicAPI.Unshipped.txt", additional);
        Assert.Equal("true", project.Descendants("GenerateDocumentationFile").Single().Value);
    }

    [Fact]
    public void Every_exported_type_is_listed_and_documented_and_internals_are_not_exported()
    {
        var listed = ListedLines();
        var docs = XDocument.Load(Path.ChangeExtension(Library.Location, ".xml")).Descendants("member").Select(m => (string)m.Attribute("name")!).ToHashSet(StringComparer.Ordinal);
        var exported = Library.GetExportedTypes();
        foreach (var type in exported)
        {
            Assert.True(listed.Contains(type.FullName!), $"{type.FullName} is public but not in PublicAPI.*.txt");
            Assert.True(docs.Contains("T:" + type.FullName), $"{type.FullName} has no XML docs");
        }

        // A surface one can read in one sitting; the codecs and layers stay internal.
        Assert.InRange(exported.Length, 10, 40);
        foreach (var name in new[] { "L1Entry", "L2Entry", "RefcountBlock", "CompressedDescriptor", "ContentRange", "Redact", "OptionTree", "RetryPolicy", "HttpSource", "Qcow2Image" })
        {
            Assert.DoesNotContain(exported, t => t.Name == name);
        }
    }
}
