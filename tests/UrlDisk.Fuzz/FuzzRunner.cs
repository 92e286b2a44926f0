using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace UrlDisk.Fuzz;

/// <summary>
/// Runs one harness over a corpus and over mutations of it. Guidance is by outcome: an input that ends in an error
/// message (or success) not seen before got somewhere new, so it joins the working corpus. Each input runs on a
/// worker thread under a watchdog, so a hang is reported instead of stalling the run.
/// </summary>
public sealed partial class FuzzRunner(IFuzzTarget target)
{
    public IFuzzTarget Target { get; } = target;

    /// <summary>Allocation allowed for one input; more means a length field was trusted.</summary>
    public long MaxAllocatedBytesPerInput { get; init; } = 256L << 20;

    public TimeSpan HangTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public int MaxCorpus { get; init; } = 4096;

    /// <summary>Where inputs with new outcomes are written (null: kept in memory only).</summary>
    public string? GrowDirectory { get; init; }

    /// <summary>Edge coverage when UrlDisk.dll is instrumented: inputs reaching new edges join the corpus too.</summary>
    public CoverageMap? Coverage { get; init; }

    public int Executions { get; private set; }

    public int Outcomes => _outcomes.Count;

    private readonly HashSet<string> _outcomes = [];

    /// <summary>Runs each input once; returns the findings.</summary>
    public List<FuzzFinding> Replay(IEnumerable<byte[]> inputs)
    {
        var findings = new List<FuzzFinding>();
        foreach (var input in inputs)
        {
            if (RunGuarded(input, out _) is { } finding)
            {
                findings.Add(finding);
            }
        }

        return findings;
    }

    /// <summary>Mutates the corpus until <paramref name="iterations"/> or <paramref name="duration"/> runs out, stopping at the first finding.</summary>
    public List<FuzzFinding> Fuzz(IReadOnlyList<byte[]> seeds, int seed, int iterations, TimeSpan duration)
    {
        var corpus = new List<byte[]>(seeds.Count == 0 ? [[], new byte[64]] : seeds);
        foreach (var input in corpus.ToArray())
        {
            if (RunGuarded(input, out _) is { } finding)
            {
                return [finding];
            }
        }

        var mutator = new Mutator(seed);
        var random = new Random(seed);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < iterations && clock.Elapsed < duration; i++)
        {
            var input = mutator.Mutate(corpus[random.Next(corpus.Count)], corpus);
            if (RunGuarded(input, out bool isNew) is { } finding)
            {
                return [finding];
            }

            if (isNew && corpus.Count < MaxCorpus)
            {
                corpus.Add(input);
                if (GrowDirectory is not null)
                {
                    Directory.CreateDirectory(GrowDirectory);
                    File.WriteAllBytes(Path.Combine(GrowDirectory, Convert.ToHexString(System.Security.Cryptography.SHA1.HashData(input))[..16].ToLowerInvariant()), input);
                }
            }
        }

        return [];
    }

    private FuzzFinding? RunGuarded(byte[] input, out bool isNew)
    {
        Executions++;
        _worker ??= new Worker(this);
        if (!_worker.TryRun(input, HangTimeout, out var outcome, out bool newEdges, out var finding))
        {
            // The worker is abandoned (a background thread): the run reports the input and stops.
            _worker = null;
            isNew = false;
            return new FuzzFinding("hang", $"{Target.Name} did not return within {HangTimeout.TotalSeconds:0} s", input);
        }

        // With coverage, new edges decide; without it, a new kind of outcome is the best signal there is.
        bool newOutcome = outcome is not null && _outcomes.Add(outcome);
        isNew = Coverage is null ? newOutcome : newEdges;
        return finding;
    }

    private Worker? _worker;

    private (string? Outcome, bool NewEdges, FuzzFinding? Finding) RunOne(byte[] input)
    {
        Coverage?.Reset();
        long before = GC.GetAllocatedBytesForCurrentThread();
        string outcome;
        try
        {
            Target.Run(input);
            outcome = "ok";
        }
        catch (Exception e) when (Target.IsExpected(e))
        {
            outcome = e.GetType().Name + ": " + Normalize(e.Message);
        }
        catch (Exception e)
        {
            return (null, false, new FuzzFinding("crash", Describe(e), input));
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        bool newEdges = Coverage?.Record() ?? false;
        return allocated > MaxAllocatedBytesPerInput
            ? (null, false, new FuzzFinding("memory", $"{Target.Name} allocated {allocated >> 20} MiB for one input", input))
            : (outcome, newEdges, null);
    }

    /// <summary>One long-lived thread that runs inputs handed to it, so the caller can wait with a timeout.</summary>
    private sealed class Worker
    {
        private readonly FuzzRunner _runner;
        private readonly SemaphoreSlim _start = new(0);
        private readonly SemaphoreSlim _done = new(0);
        private byte[] _input = [];
        private (string? Outcome, bool NewEdges, FuzzFinding? Finding) _result;

        public Worker(FuzzRunner runner)
        {
            _runner = runner;
            new Thread(Loop, 16 << 20) { IsBackground = true, Name = "fuzz " + runner.Target.Name }.Start();
        }

        public bool TryRun(byte[] input, TimeSpan timeout, out string? outcome, out bool newEdges, out FuzzFinding? finding)
        {
            _input = input;
            _start.Release();
            bool finished = _done.Wait(timeout);
            (outcome, newEdges, finding) = finished ? _result : default;
            return finished;
        }

        private void Loop()
        {
            while (true)
            {
                _start.Wait();
                _result = _runner.RunOne(_input);
                _done.Release();
            }
        }
    }

    private static string Describe(Exception e)
    {
        var text = new StringBuilder($"{e.GetType().FullName}: {e.Message}");
        var frames = new StackTrace(e, false).GetFrames().Take(6).Select(f => f.GetMethod() is { } m ? $"{m.DeclaringType?.Name}.{m.Name}" : "?");
        text.Append(" at ").AppendJoin(" < ", frames);
        return text.ToString();
    }

    /// <summary>An error message without the values in it (numbers, quoted text), so that only its kind counts as an outcome.</summary>
    private static string Normalize(string message)
    {
        string shape = Values().Replace(message, "#");
        return shape.Length <= 120 ? shape : shape[..120];
    }

    [GeneratedRegex("'[^']*'|\"[^\"]*\"|0x[0-9a-fA-F]+|[0-9]+")]
    private static partial Regex Values();
}
