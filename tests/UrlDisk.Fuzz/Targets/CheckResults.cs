using UrlDisk.Formats;

namespace UrlDisk.Fuzz.Targets;

/// <summary>What every checker's result must satisfy, whatever the input.</summary>
internal static class CheckResults
{
    public static void ThrowIfInconsistent(ImageCheckResult result)
    {
        if (result.Corruptions < 0 || result.Leaks != 0 || result.ImageEndOffset is not null)
        {
            throw new InvalidOperationException($"impossible counts: {result}");
        }

        if (result.Messages.Count != result.Corruptions)
        {
            throw new InvalidOperationException($"{result.Corruptions} corruptions but {result.Messages.Count} messages");
        }

        if (result.ExitCode is not (0 or 1 or 2) || (result.Corruptions == 0) != (result.ExitCode == 0))
        {
            throw new InvalidOperationException($"exit code {result.ExitCode} for {result.Corruptions} corruptions");
        }
    }
}
