using Microsoft.Extensions.Logging;
using UrlDisk.Diagnostics;

namespace UrlDisk.Cli;

/// <summary>
/// <c>-v</c> and <c>URLDISK_LOG</c>: the library's log lines on stderr, one per event. Hand-written rather than
/// Microsoft.Extensions.Logging.Console, which brings options binding and reflection the native binary does not need.
/// </summary>
internal sealed class StderrLogger(string category, LogLevel minimum) : ILogger
{
    private static readonly Lock Gate = new();

    /// <summary>Installs the logger as the library's fallback when <c>-v</c> or <c>URLDISK_LOG</c> asks for it.</summary>
    public static void Configure(bool verbose, string? environment)
    {
        LogLevel? level = environment?.Trim().ToLowerInvariant() switch
        {
            "trace" => LogLevel.Trace,
            "debug" or "1" or "on" or "true" => LogLevel.Debug,
            "info" or "information" => LogLevel.Information,
            "warning" or "warn" => LogLevel.Warning,
            "error" => LogLevel.Error,
            _ => null,
        };
        if (verbose)
        {
            level = level is { } l && l < LogLevel.Debug ? l : LogLevel.Debug;
        }

        if (level is { } minimum)
        {
            UrlDiskLogging.Fallback = new Factory(minimum);
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum && logLevel != LogLevel.None;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
        {
            return;
        }

        string level = logLevel switch
        {
            LogLevel.Trace => "trace",
            LogLevel.Debug => "debug",
            LogLevel.Information => "info",
            LogLevel.Warning => "warn",
            LogLevel.Error => "error",
            _ => "crit",
        };
        string line = $"urldisk: {level}: {category}: {formatter(state, exception)}";
        lock (Gate)
        {
            Console.Error.WriteLine(line);
        }
    }

    private sealed class Factory(LogLevel minimum) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => new StderrLogger(categoryName, minimum);

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("the CLI logs to stderr only");

        public void Dispose()
        {
        }
    }
}
