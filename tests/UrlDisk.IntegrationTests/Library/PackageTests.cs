using System.IO.Compression;
using System.Xml.Linq;
using UrlDisk.IntegrationTests.Infrastructure;

namespace UrlDisk.IntegrationTests.Library;

/// <summary><c>dotnet pack</c> makes the library and the tool package, with their metadata, docs, readme and symbols.</summary>
public sealed class PackageTests
{
    [Fact]
    public async Task Pack_makes_both_packages_with_metadata_docs_and_symbols()
    {
        using var tmp = new TempDir();

        // --no-build: the solution was built (dotnet test builds it) in the configuration these tests run in.
        var pack = await ProcessRunner.RunAsync("dotnet", ["pack", Path.Combine(Repository.Root, "UrlDisk.slnx"), "-c", Repository.Configuration, "--no-build", "-o", tmp.Path],
            timeout: TimeSpan.FromMinutes(5));
        Assert.True(pack.ExitCode == 0, pack.ToString());
        string[] packages = Directory.GetFiles(tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        Assert.Contains(packages, p => p.StartsWith("UrlDisk.0.", StringComparison.Ordinal) && p.EndsWith(".nupkg", StringComparison.Ordinal));
        Assert.Contains(packages, p => p.StartsWith("UrlDisk.0.", StringComparison.Ordinal) && p.EndsWith(".snupkg", StringComparison.Ordinal));
        Assert.Contains(packages, p => p.StartsWith("UrlDisk.Cli.0.", StringComparison.Ordinal) && p.EndsWith(".nupkg", StringComparison.Ordinal));
        Assert.DoesNotContain(packages, p => p.Contains("Tests", StringComparison.Ordinal) || p.Contains("Fuzz", StringComparison.Ordinal) || p.Contains("Sample", StringComparison.Ordinal) || p.Contains("Readme", StringComparison.Ordinal));

        var library = ReadPackage(Path.Combine(tmp.Path, packages.Single(p => p.StartsWith("UrlDisk.0.", StringComparison.Ordinal) && p.EndsWith(".nupkg", StringComparison.Ordinal))));
        var tool = ReadPackage(Path.Combine(tmp.Path, packages.Single(p => p.StartsWith("UrlDisk.Cli.0.", StringComparison.Ordinal) && p.EndsWith(".nupkg", StringComparison.Ordinal))));

        // One version for both, from Directory.Build.props.
        Assert.Equal(library.Meta("version"), tool.Meta("version"));
        foreach (var package in new[] { library, tool })
        {
            Assert.Equal("MIT", package.Meta("license"));
            Assert.Equal("README.md", package.Meta("readme"));
            Assert.Contains("README.md", package.Files);
            Assert.False(string.IsNullOrWhiteSpace(package.Meta("description")));
            Assert.NotEqual("Package Description", package.Meta("description"));
            Assert.Contains("qcow2", package.Meta("tags"), StringComparison.Ordinal);
            Assert.NotNull(package.Metadata.Element(package.Ns + "repository")?.Attribute("url"));
        }

        Assert.Equal("UrlDisk", library.Meta("id"));
        Assert.Contains("lib/net10.0/UrlDisk.dll", library.Files);
        Assert.Contains("lib/net10.0/UrlDisk.xml", library.Files);
        Assert.Contains(library.Dependencies, d => d == "Microsoft.Extensions.Logging.Abstractions");
        Assert.DoesNotContain(library.Dependencies, d => d.Contains("PublicApiAnalyzers", StringComparison.Ordinal));

        Assert.Equal("UrlDisk.Cli", tool.Meta("id"));
        Assert.Contains(tool.Metadata.Descendants(tool.Ns + "packageType"), e => (string?)e.Attribute("name") == "DotnetTool");
        string settings = tool.Files.Single(f => f.EndsWith("DotnetToolSettings.xml", StringComparison.Ordinal));
        var command = XDocument.Parse(tool.Read(settings)).Descendants("Command").Single();
        Assert.Equal("urldisk", (string?)command.Attribute("Name"));
    }

    private sealed record Package(XNamespace Ns, XElement Metadata, IReadOnlyList<string> Files, IReadOnlyList<string> Dependencies, Func<string, string> Read)
    {
        public string Meta(string name) => Metadata.Element(Ns + name)?.Value ?? "";
    }

    private static Package ReadPackage(string path)
    {
        var entries = new Dictionary<string, string>(StringComparer.Ordinal);
        using (var zip = ZipFile.OpenRead(path))
        {
            foreach (var e in zip.Entries.Where(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal) || e.FullName.EndsWith(".xml", StringComparison.Ordinal) || e.FullName.EndsWith(".md", StringComparison.Ordinal)))
            {
                using var reader = new StreamReader(e.Open());
                entries[e.FullName] = reader.ReadToEnd();
            }

            var files = zip.Entries.Select(e => e.FullName).ToList();
            var nuspec = XDocument.Parse(entries[files.Single(f => f.EndsWith(".nuspec", StringComparison.Ordinal))]);
            XNamespace ns = nuspec.Root!.Name.Namespace;
            var metadata = nuspec.Root.Element(ns + "metadata")!;
            var dependencies = metadata.Descendants(ns + "dependency").Select(d => (string)d.Attribute("id")!).ToList();
            return new Package(ns, metadata, files, dependencies, name => entries[name]);
        }
    }
}
