namespace UrlDisk.IntegrationTests.Library;

/// <summary>The checkout these tests were built from, and the configuration they were built in.</summary>
internal static class Repository
{
    public static string Root { get; } = FindRoot();

    /// <summary>Release or Debug: the folder name above <c>net10.0</c> in the test binaries' path.</summary>
    public static string Configuration { get; } = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;

    /// <summary>The built assembly of a sample (the solution build builds every sample).</summary>
    public static string Sample(string name)
    {
        string dll = Path.Combine(Root, "samples", name, "bin", Configuration, "net10.0", name + ".dll");
        Assert.True(File.Exists(dll), $"the sample {name} is not built ({dll}); dotnet build UrlDisk.slnx builds it");
        return dll;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "UrlDisk.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no UrlDisk.slnx above {AppContext.BaseDirectory}: the tests run from a checkout");
    }
}
