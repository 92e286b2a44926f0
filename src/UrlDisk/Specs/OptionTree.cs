using System.Globalization;

namespace UrlDisk.Specs;

/// <summary>
/// A node's options as flat dotted keys (<c>file.driver</c>, <c>file.url</c>), the form QEMU's
/// <c>qdict_flatten</c> gives. Values are strings; typed accessors validate and name the option on error.
/// </summary>
internal sealed class OptionTree
{
    private readonly Dictionary<string, string> _values;
    private readonly string _path;

    public OptionTree() : this(new Dictionary<string, string>(StringComparer.Ordinal), "") { }

    public OptionTree(IEnumerable<KeyValuePair<string, string>> values)
        : this(new Dictionary<string, string>(values, StringComparer.Ordinal), "") { }

    private OptionTree(Dictionary<string, string> values, string path)
    {
        _values = values;
        _path = path;
    }

    /// <summary>Dotted path of this node from the root, for messages ("file.", "backing.file.").</summary>
    public string Path => _path;

    public IEnumerable<string> Keys => _values.Keys;

    public int Count => _values.Count;

    public IEnumerable<KeyValuePair<string, string>> Pairs => _values;

    public string? this[string key]
    {
        get => _values.TryGetValue(key, out var v) ? v : null;
        set
        {
            if (value is null)
            {
                _values.Remove(key);
            }
            else
            {
                // No path, URL, name or number holds a NUL; refused here, it reaches no file or server API.
                if (value.Contains('\0'))
                {
                    throw new OptionException($"option '{_path}{key}': the value contains a NUL character (\\u0000), which no option allows");
                }

                _values[key] = value;
            }
        }
    }

    public bool Contains(string key) => _values.ContainsKey(key);

    /// <summary>True when any key starts with <c>prefix.</c>.</summary>
    public bool HasChild(string prefix)
    {
        string p = prefix + ".";
        return _values.Keys.Any(k => k.StartsWith(p, StringComparison.Ordinal));
    }

    /// <summary>The options under <c>prefix.</c>, with the prefix removed.</summary>
    public OptionTree Child(string prefix)
    {
        string p = prefix + ".";
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in _values)
        {
            if (k.StartsWith(p, StringComparison.Ordinal))
            {
                d[k[p.Length..]] = v;
            }
        }

        return new OptionTree(d, _path + p);
    }

    /// <summary>Options that are this node's own (no dot), excluding child nodes.</summary>
    public IEnumerable<string> OwnKeys(params string[] childNodes)
        => _values.Keys.Where(k => !childNodes.Any(c => k.StartsWith(c + ".", StringComparison.Ordinal)));

    public OptionTree Clone() => new(new Dictionary<string, string>(_values, StringComparer.Ordinal), _path);

    /// <summary>Fails on any own key not in <paramref name="known"/>, listing the known ones.</summary>
    public void RejectUnknown(string driver, IReadOnlyCollection<string> known, params string[] childNodes)
    {
        foreach (var key in OwnKeys(childNodes))
        {
            if (!known.Contains(key))
            {
                throw new OptionException(
                    $"{driver}: unknown option '{_path}{key}'; known options: {string.Join(", ", known.Order(StringComparer.Ordinal))}");
            }
        }
    }

    public string? GetString(string key) => this[key];

    public string GetRequiredString(string driver, string key)
        => this[key] ?? throw new OptionException($"{driver}: option '{_path}{key}' is required");

    public bool GetBool(string key, bool defaultValue)
    {
        var v = this[key];
        if (v is null)
        {
            return defaultValue;
        }

        return v.ToLowerInvariant() switch
        {
            "on" or "true" or "yes" or "1" => true,
            "off" or "false" or "no" or "0" => false,
            _ => throw new OptionException($"option '{_path}{key}': '{v}' is not a boolean; use on or off"),
        };
    }

    public long GetSize(string key, long defaultValue)
    {
        var v = this[key];
        if (v is null)
        {
            return defaultValue;
        }

        if (!SizeParser.TryParse(v, out long size))
        {
            throw new OptionException(SizeParser.Error($"option '{_path}{key}'", v));
        }

        return size;
    }

    public int GetInt(string key, int defaultValue, int min, int max)
    {
        var v = this[key];
        if (v is null)
        {
            return defaultValue;
        }

        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < min || n > max)
        {
            throw new OptionException($"option '{_path}{key}': '{v}' must be a whole number from {min} to {max}");
        }

        return n;
    }

    /// <summary>Seconds from 0.001 (a millisecond: timers are no finer) to <paramref name="max"/>.</summary>
    public double GetSeconds(string key, double defaultValue, double max)
    {
        var v = this[key];
        if (v is null)
        {
            return defaultValue;
        }

        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) || !(s >= 0.001) || s > max)
        {
            throw new OptionException($"option '{_path}{key}': '{v}' must be a number of seconds from 0.001 to {max}");
        }

        return s;
    }

    /// <summary>A file path option: null when absent; an empty value is an error rather than "no file".</summary>
    public string? GetPath(string key)
    {
        var v = this[key];
        if (v is { Length: 0 })
        {
            throw new OptionException($"option '{_path}{key}' is empty; give the path of a file");
        }

        return v;
    }
}
