using System.Text;
using System.Text.Json;

namespace UrlDisk.Specs;

/// <summary>
/// Turns the three spec forms QEMU accepts into one option tree:
/// a plain filename or URL, <c>json:{…}</c> (nested or dotted keys), and key=value lists (<c>--image-opts</c>)
/// where <c>,,</c> is a literal comma. Pure: no I/O.
/// </summary>
internal static class SpecParser
{
    /// <summary>Parses a positional argument: <c>json:</c> or a plain filename/URL.</summary>
    public static OptionTree ParseFilename(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.StartsWith("json:", StringComparison.Ordinal))
        {
            return ParseJson(spec.AsSpan(5));
        }

        if (spec.Length == 0)
        {
            throw new OptionException("empty filename: give a path, a URL (http, https, ftp, ftps, tftp, file) or a json: spec");
        }

        var tree = new OptionTree();
        tree["file.filename"] = spec;
        return tree;
    }

    /// <summary>Parses an <c>--image-opts</c> string: <c>key=value,key=value</c>, <c>,,</c> for a comma.</summary>
    public static OptionTree ParseKeyValue(string text)
    {
        var tree = new OptionTree();
        foreach (var item in SplitKeyValue(text))
        {
            int eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new OptionException($"invalid option '{item}' in '{Redact.Spec(text)}': expected key=value (write ,, for a literal comma)");
            }

            string key = item[..eq];
            if (key == "header" || key.EndsWith(".header", StringComparison.Ordinal))
            {
                // The one repeatable option: header=A: 1,header=B: 2 becomes header.0, header.1 (as a JSON array would).
                int n = 0;
                while (tree.Contains($"{key}.{n}"))
                {
                    n++;
                }

                key = $"{key}.{n}";
            }

            if (tree.Contains(key))
            {
                throw new OptionException($"option '{key}' is given twice");
            }

            tree[key] = item[(eq + 1)..];
        }

        ExpandFilenameValues(tree);
        return tree;
    }

    /// <summary>Parses JSON options (after the <c>json:</c> prefix) into flat dotted keys.</summary>
    public static OptionTree ParseJson(ReadOnlySpan<char> json)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToString(), new JsonDocumentOptions { AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException e)
        {
            // The parser's own text is about its internals (tokens, isFinalBlock); say where, and what is expected.
            long at = (e.BytePositionInLine ?? 0) + 1;
            throw new OptionException(
                $"could not parse the JSON options: invalid JSON at character {at} after 'json:'; write one object such as json:{{\"file.driver\":\"http\",\"file.url\":\"http://host/disk.img\"}}");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new OptionException("invalid JSON object given: json: must be followed by an object {…}");
            }

            var tree = new OptionTree();
            Flatten(doc.RootElement, "", tree);
            ExpandFilenameValues(tree);
            return tree;
        }
    }

    private static void Flatten(JsonElement obj, string prefix, OptionTree tree)
    {
        foreach (var p in obj.EnumerateObject())
        {
            string key = prefix + p.Name;
            switch (p.Value.ValueKind)
            {
                case JsonValueKind.Object:
                    Flatten(p.Value, key + ".", tree);
                    break;
                case JsonValueKind.Array:
                    int i = 0;
                    foreach (var e in p.Value.EnumerateArray())
                    {
                        if (e.ValueKind == JsonValueKind.Object)
                        {
                            Flatten(e, $"{key}.{i}.", tree);
                        }
                        else
                        {
                            Put(tree, $"{key}.{i}", Scalar(e, key));
                        }

                        i++;
                    }

                    break;
                default:
                    Put(tree, key, Scalar(p.Value, key));
                    break;
            }
        }
    }

    private static void Put(OptionTree tree, string key, string value)
    {
        if (tree.Contains(key))
        {
            throw new OptionException($"option '{key}' is given twice");
        }

        tree[key] = value;
    }

    private static string Scalar(JsonElement e, string key) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString()!,
        JsonValueKind.Number => e.GetRawText(),
        JsonValueKind.True => "on",
        JsonValueKind.False => "off",
        _ => throw new OptionException($"option '{key}': null is not a value"),
    };

    /// <summary>
    /// <c>file=URL</c> (a string where a node is expected) means <c>file.filename=URL</c>, as in QEMU.
    /// </summary>
    private static void ExpandFilenameValues(OptionTree tree)
    {
        foreach (var key in tree.Keys.ToList())
        {
            bool isNodeKey = key == "file" || key == "backing" || key.EndsWith(".file", StringComparison.Ordinal) || key.EndsWith(".backing", StringComparison.Ordinal);
            if (isNodeKey && !tree.HasChild(key))
            {
                string value = tree[key]!;
                if (key.EndsWith("backing", StringComparison.Ordinal) && value.Length == 0)
                {
                    continue; // backing="" (JSON null in QEMU) means no backing file
                }

                tree[key] = null;
                tree[key + ".filename"] = value;
            }
        }
    }

    /// <summary>Splits at single commas; <c>,,</c> is a literal comma.</summary>
    public static List<string> SplitKeyValue(string text)
    {
        var items = new List<string>();
        var sb = new StringBuilder();
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == ',')
            {
                if (i + 1 < text.Length && text[i + 1] == ',')
                {
                    sb.Append(',');
                    i++;
                    continue;
                }

                items.Add(sb.ToString());
                sb.Clear();
                continue;
            }

            sb.Append(c);
        }

        items.Add(sb.ToString());
        return items.Where(s => s.Length > 0).ToList();
    }
}
