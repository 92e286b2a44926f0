using System.Globalization;
using System.Text.Json.Nodes;

namespace UrlDisk.IntegrationTests.Http;

/// <summary>Builds the spec strings users type: json: (dotted or nested) and --image-opts key=value.</summary>
internal static class HttpSpecs
{
    /// <summary><c>json:{"file.driver":driver,"file.url":url,"file.k":v…}</c> (dotted keys).</summary>
    public static string JsonDotted(string driver, string url, params (string Key, object Value)[] options)
    {
        var o = new JsonObject { ["file.driver"] = driver, ["file.url"] = url };
        foreach (var (k, v) in options)
        {
            o["file." + k] = ToNode(v);
        }

        return "json:" + o.ToJsonString();
    }

    /// <summary><c>json:{"driver":"raw","file":{"driver":driver,"url":url,…}}</c> (nested).</summary>
    public static string JsonNested(string driver, string url, params (string Key, object Value)[] options)
    {
        var file = new JsonObject { ["driver"] = driver, ["url"] = url };
        foreach (var (k, v) in options)
        {
            file[k] = ToNode(v);
        }

        return "json:" + new JsonObject { ["driver"] = "raw", ["file"] = file }.ToJsonString();
    }

    /// <summary><c>driver=raw,file.driver=…,file.url=…</c> with commas in values doubled.</summary>
    public static string ImageOpts(string driver, string url, params (string Key, object Value)[] options)
    {
        var parts = new List<string> { "driver=raw", "file.driver=" + driver, "file.url=" + Escape(url) };
        foreach (var (k, v) in options)
        {
            parts.Add($"file.{k}={Escape(Convert.ToString(v, CultureInfo.InvariantCulture)!)}");
        }

        return string.Join(',', parts);
    }

    private static string Escape(string v) => v.Replace(",", ",,", StringComparison.Ordinal);

    private static JsonNode? ToNode(object v) => v switch
    {
        bool b => JsonValue.Create(b),
        int i => JsonValue.Create(i),
        long l => JsonValue.Create(l),
        double d => JsonValue.Create(d),
        _ => JsonValue.Create(Convert.ToString(v, CultureInfo.InvariantCulture)),
    };
}
