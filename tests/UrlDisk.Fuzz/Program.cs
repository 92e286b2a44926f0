using System.Globalization;
using UrlDisk.Fuzz;

// Fuzz runs by hand and in CI (scripts/fuzz.sh). The test suite also replays the corpus (FuzzTests in UrlDisk.Tests).
//   UrlDisk.Fuzz list
//   UrlDisk.Fuzz run TARGET|all [--seconds N] [--seed N] [--grow DIR] [--corpus DIR] [--coverage]
//   UrlDisk.Fuzz replay TARGET FILE...
// --coverage instruments a copy of UrlDisk.dll with SharpFuzz and runs there, guided by edge coverage.
if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
{
    Console.WriteLine("usage: UrlDisk.Fuzz list | run TARGET|all [--seconds N] [--seed N] [--grow DIR] [--corpus DIR] [--coverage] | replay TARGET FILE...");
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

bool instrumented = args.Contains(Instrumentation.Flag);
if (args.Contains("--coverage") && !instrumented)
{
    return Instrumentation.RunInstrumentedCopy(args);
}

var coverage = instrumented ? CoverageMap.TryAttach() ?? throw new InvalidOperationException("UrlDisk.dll is not instrumented") : null;
var targets = args.Length >= 2 && args[1] == "all" ? FuzzTargets.All : args.Length >= 2 && FuzzTargets.Find(args[1]) is { } one ? [one] : null;
if (targets is null)
{
    Console.Error.WriteLine($"fuzz: name a target (or all): {string.Join(", ", FuzzTargets.All.Select(t => t.Name))}");
    return 2;
}

string? Option(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;

int failures = 0;
foreach (var target in targets)
{
    var runner = new FuzzRunner(target) { GrowDirectory = Option("--grow") is { } g ? Path.Combine(g, target.Name) : null, Coverage = coverage };
    List<FuzzFinding> findings;
    if (args[0] == "replay")
    {
        findings = runner.Replay(args.Skip(2).Where(a => a != Instrumentation.Flag).Select(File.ReadAllBytes));
    }
    else
    {
        string corpusDir = Path.Combine(Option("--corpus") ?? Corpus.FindRoot(Environment.CurrentDirectory) ?? Corpus.FindRoot(AppContext.BaseDirectory) ?? "tests/fuzz-corpus", target.Name);
        int seconds = int.Parse(Option("--seconds") ?? "60", CultureInfo.InvariantCulture);
        int seed = int.Parse(Option("--seed") ?? Environment.TickCount.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        findings = runner.Fuzz(Corpus.Load(corpusDir), seed, int.MaxValue, TimeSpan.FromSeconds(seconds));
        Console.Write($"fuzz {target.Name}: seed {seed}, {seconds} s, ");
    }

    Console.WriteLine($"{runner.Executions} executions, {runner.Outcomes} outcomes{(coverage is null ? "" : $", {coverage.Covered()} edges covered so far")}, {findings.Count} findings");
    foreach (var f in findings)
    {
        string file = $"{f.Kind}-{target.Name}-{Convert.ToHexString(System.Security.Cryptography.SHA1.HashData(f.Input))[..12].ToLowerInvariant()}";
        File.WriteAllBytes(file, f.Input);
        Console.WriteLine($"  {f.Kind}: {f.Description}\n  input saved as {Path.GetFullPath(file)}");
        failures++;
    }
}

return failures == 0 ? 0 : 1;
