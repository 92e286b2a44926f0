using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using UrlDisk.Opening;

namespace UrlDisk.Diagnostics;

/// <summary>
/// Where loggers come from: the <see cref="OpenContext.LoggerFactory"/> an open was given, else the process-wide
/// <see cref="Fallback"/> (the CLI's <c>-v</c> sets it), else nothing.
/// </summary>
internal static class UrlDiskLogging
{
    /// <summary>Used when an open context names no logger factory.</summary>
    public static ILoggerFactory? Fallback { get; set; }

    public static ILogger Create(OpenContext? context, string category)
        => (context?.LoggerFactory ?? Fallback ?? NullLoggerFactory.Instance).CreateLogger(category);

    public static ILogger Create(string category) => Create(null, category);
}
