using System.Globalization;
using UrlDisk.Fuzz;

// Long fuzz runs by hand; the test suite runs each target briefly (FuzzTests in UrlDisk.Tests).
//   dotnet run -c Release --project tests/UrlDisk.Fuzz -- list
//   dotnet run -c Release --project tests/UrlDisk.Fuzz -- run qcow2-image --seconds 600 [--seed N] [--grow DIR]
//   dotnet run -c Release --project tests/UrlDisk.Fuzz -- replay qcow2-image FILE...
if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
{
    Console.WriteLine("usage: UrlDisk.Fuzz list | run TARGET [--seconds N] [--seed N] [--grow DIR] [--corpus DIR] | replay TARGET FILE...");
    return 0;
}

if (args[0] == "list")
{
    foreach (var t in FuzzTargets.All)
    {
        Console.WriteLine(t.Name);
    }

    return 0;
}

if (args.Length < 2 || FuzzTargets.Find(args[1]) is not { } target)
{
    Console.Error.WriteLine($"fuzz: name a target: {string.Join(", ", FuzzTargets.All.Select(t => t.Name))}");
    return 2;
}

string? Option(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;

string? grow = Option("--grow");
var runner = new FuzzRunner(target) { GrowDirectory = grow };
List<FuzzFinding> findings;
if (args[0] == "replay")
{
    findings = runner.Replay(args.Skip(2).Select(File.ReadAllBytes));
}
else
{
    string corpusDir = Option("--corpus") ?? Path.Combine(Corpus.FindRoot(Environment.CurrentDirectory) ?? "tests/fuzz-corpus", target.Name);
    int seconds = int.Parse(Option("--seconds") ?? "60", CultureInfo.InvariantCulture);
    int seed = int.Parse(Option("--seed") ?? Environment.TickCount.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    Console.WriteLine($"fuzz {target.Name}: corpus {corpusDir}, seed {seed}, {seconds} s");
    findings = runner.Fuzz(Corpus.Load(corpusDir), seed, int.MaxValue, TimeSpan.FromSeconds(seconds));
}

Console.WriteLine($"{runner.Executions} executions, {runner.Outcomes} distinct outcomes, {findings.Count} findings");
foreach (var f in findings)
{
    string file = $"{f.Kind}-{target.Name}-{Convert.ToHexString(System.Security.Cryptography.SHA1.HashData(f.Input))[..12].ToLowerInvariant()}";
    File.WriteAllBytes(file, f.Input);
    Console.WriteLine($"{f.Kind}: {f.Description}\n  input saved as {file}");
}

return findings.Count == 0 ? 0 : 1;
