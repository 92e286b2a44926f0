using UrlDisk.Fuzz;

namespace UrlDisk.Tests.Fuzz;

/// <summary>
/// Every harness replays its checked-in corpus (seeds and past findings) cleanly; the runner reports crashes and hangs.
/// The mutation runs themselves are scripts/fuzz.sh (coverage-guided; a short one ends scripts/test.sh).
/// </summary>
public class FuzzTests
{
    private const int Seed = 20261202;

    public static TheoryData<string> Targets => [.. FuzzTargets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(Targets))]
    public void Corpus_replays_without_findings(string name)
    {
        var runner = new FuzzRunner(FuzzTargets.Find(name)!);
        var corpus = Corpus.Load(CorpusDirectory(name));
        Assert.NotEmpty(corpus);

        var findings = runner.Replay(corpus);

        Assert.True(findings.Count == 0, string.Join("\n", findings));
    }

    [Fact]
    public void A_crashing_harness_is_reported_with_its_input()
    {
        var runner = new FuzzRunner(new ThrowsOnByte(0x42));

        var findings = runner.Fuzz([[1, 2, 3, 4]], Seed, iterations: 100_000, TimeSpan.FromSeconds(10));

        var finding = Assert.Single(findings);
        Assert.Equal("crash", finding.Kind);
        Assert.Contains((byte)0x42, finding.Input);
        Assert.Contains("IndexOutOfRangeException", finding.Description);
    }

    [Fact]
    public void A_hanging_harness_is_reported()
    {
        var runner = new FuzzRunner(new HangsOnLength(3)) { HangTimeout = TimeSpan.FromMilliseconds(200) };

        var findings = runner.Replay([[1], [1, 2, 3]]);

        Assert.Equal("hang", Assert.Single(findings).Kind);
    }

    private static string CorpusDirectory(string name)
        => Path.Combine(Corpus.FindRoot(AppContext.BaseDirectory) ?? throw new DirectoryNotFoundException("tests/fuzz-corpus not found"), name);

    private sealed class ThrowsOnByte(byte value) : IFuzzTarget
    {
        public string Name => "throws";

        public void Run(ReadOnlySpan<byte> input)
        {
            if (input.Contains(value))
            {
                throw new IndexOutOfRangeException("found it");
            }
        }
    }

    private sealed class HangsOnLength(int length) : IFuzzTarget
    {
        public string Name => "hangs";

        public void Run(ReadOnlySpan<byte> input)
        {
            while (input.Length == length)
            {
                Thread.Sleep(50);
            }
        }
    }
}
