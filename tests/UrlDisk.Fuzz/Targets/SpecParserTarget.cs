using System.Text;
using UrlDisk.Specs;

namespace UrlDisk.Fuzz.Targets;

/// <summary>The three spec forms (filename, json:, key=value) and sizes, from UTF-8 text.</summary>
public sealed class SpecParserTarget : IFuzzTarget
{
    public string Name => "spec";

    public void Run(ReadOnlySpan<byte> input)
    {
        string text = Encoding.UTF8.GetString(input);
        Try(() => SpecParser.ParseKeyValue(text));
        Try(() => SpecParser.ParseFilename("json:" + text));
        if (SizeParser.TryParse(text, out long bytes) && bytes < 0)
        {
            throw new InvalidOperationException($"size '{text}' parsed as negative {bytes}");
        }

        // Last and not caught: its error (or success) is this input's outcome, which guides the fuzzer.
        Typed(SpecParser.ParseFilename(text));
    }

    private static void Try(Func<OptionTree> parse)
    {
        try
        {
            Typed(parse());
        }
        catch (OptionException)
        {
        }
    }

    private static void Typed(OptionTree tree)
    {
        foreach (var key in tree.Keys)
        {
            // Typed accessors must fail with an OptionException, never with a raw .NET error.
            TryTyped(() => tree.GetSize(key, 0));
            TryTyped(() => tree.GetBool(key, false));
            TryTyped(() => tree.GetInt(key, 0, int.MinValue, int.MaxValue));
        }
    }

    private static void TryTyped(Func<object> get)
    {
        try
        {
            get();
        }
        catch (OptionException)
        {
        }
    }
}
