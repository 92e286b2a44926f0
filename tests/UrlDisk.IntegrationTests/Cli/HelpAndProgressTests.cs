using System.Text.RegularExpressions;
using UrlDisk.IntegrationTests.Infrastructure;
using static UrlDisk.IntegrationTests.Cli.QemuImgParity;

namespace UrlDisk.IntegrationTests.Cli;

/// <summary>What users read: help (usage names urldisk, defaults once, examples) and convert -p's progress.</summary>
public sealed partial class HelpAndProgressTests
{
    public static TheoryData<string> Verbs => new() { "info", "convert", "create", "check", "compare", "map", "serve", "mount", "unmount", "demo" };

    [Theory]
    [MemberData(nameof(Verbs))]
    public async Task Help_names_urldisk_states_each_default_once_and_shows_examples(string verb)
    {
        var r = await UrlDiskOkAsync(verb, "--help");
        var lines = r.Stdout.Split('\n');
        int usage = Array.IndexOf(lines, "Usage:");
        Assert.True(usage >= 0, r.Stdout);
        Assert.StartsWith($"  urldisk {verb}", lines[usage + 1], StringComparison.Ordinal);
        Assert.DoesNotContain("UrlDisk.Cli", r.Stdout, StringComparison.Ordinal);
        foreach (string line in lines.Where(l => l.Contains("[default:", StringComparison.Ordinal)))
        {
            string before = line[..line.IndexOf("[default:", StringComparison.Ordinal)];
            Assert.DoesNotContain("default", before, StringComparison.OrdinalIgnoreCase);
        }

        int examples = Array.IndexOf(lines, "Examples:");
        Assert.True(examples > usage, r.Stdout);
        int count = lines.Skip(examples + 1).TakeWhile(l => l.StartsWith($"  urldisk {verb}", StringComparison.Ordinal)).Count();
        Assert.InRange(count, 2, 3);
    }

    [Fact]
    public async Task Progress_to_a_file_is_lines_without_carriage_returns()
    {
        using var temp = new TempDir("urldisk-progress");
        string src = temp.File("src.raw");
        await File.WriteAllBytesAsync(src, ImageFactory.Random(64 << 20, 9));
        var r = await UrlDiskOkAsync("convert", "-p", src, temp.File("dst.raw"));
        Assert.DoesNotContain('\r', r.Stdout);
        var lines = r.Stdout.TrimEnd('\n').Split('\n');
        Assert.All(lines, l => Assert.Matches(Frame(), l));
        Assert.StartsWith("    (100.00/100%)", lines[^1], StringComparison.Ordinal);
        Assert.InRange(lines.Length, 2, 12);
    }

    [Fact]
    public async Task Progress_on_a_terminal_is_rewritten_in_place_as_qemu_img_does()
    {
        using var temp = new TempDir("urldisk-progress");
        string src = temp.File("src.raw");
        await File.WriteAllBytesAsync(src, ImageFactory.Random(64 << 20, 9));
        string script = ProcessRunner.RequireTool("script", "bsdutils");
        string launcher = await UrlDiskCli.LauncherAsync();
        foreach (string tool in new[] { "qemu-img", launcher })
        {
            // script(1) gives the command a terminal as stdout; its output is what the terminal got.
            var r = await ProcessRunner.RunAsync(script, ["-qec", $"{tool} convert -p '{src}' '{temp.File("dst.raw")}'", "/dev/null"]);
            Assert.True(r.ExitCode == 0, r.ToString());
            // The terminal set-up sequences (.NET's console writes some) are not part of the frames.
            var frames = Escape().Replace(r.Stdout, "").Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n').Split('\r', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(frames.Length >= 2, $"{tool}: {r.Stdout}");
            Assert.All(frames, f => Assert.Matches(Frame(), f.Trim('\n')));
            Assert.Contains(frames, f => f.StartsWith("    (100.00/100%)", StringComparison.Ordinal));
        }
    }

    [GeneratedRegex(@"\x1b(\[[0-9;?]*[A-Za-z]|[=>])")]
    private static partial Regex Escape();

    /// <summary>qemu-img's frame, then (urldisk) the rate and time left.</summary>
    [GeneratedRegex(@"^    \(\d{1,3}\.\d\d/100%\)( [\d.]+ MiB/s(, \d+(:\d\d)+ left)?)? *$")]
    private static partial Regex Frame();
}
