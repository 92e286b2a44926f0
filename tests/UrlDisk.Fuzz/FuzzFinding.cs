namespace UrlDisk.Fuzz;

/// <summary>An input that crashed a harness (an unexpected exception), hung it, or made it allocate without bound.</summary>
public sealed record FuzzFinding(string Kind, string Description, byte[] Input)
{
    public override string ToString() => $"{Kind}: {Description} (input {Input.Length} bytes: {Convert.ToBase64String(Input.AsSpan(0, Math.Min(Input.Length, 4096)))})";
}
