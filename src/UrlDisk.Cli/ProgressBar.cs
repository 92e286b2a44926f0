using System.Diagnostics;
using System.Globalization;

namespace UrlDisk.Cli.Verbs;

/// <summary>
/// qemu-img's progress, <c>    (12.34/100%)</c>, with the rate and time left after it. On a terminal it is
/// rewritten in place (<c>\r</c>) at every whole percent; when stdout is a file or pipe it is one line per tenth
/// instead, so logs hold no <c>\r</c> frames (qemu-img writes the frames there too).
/// </summary>
internal sealed class ProgressBar(long total, TextWriter? output = null, bool? terminal = null) : IDisposable
{
    private readonly Lock _lock = new();
    private readonly TextWriter _out = output ?? Console.Out;
    private readonly bool _terminal = terminal ?? !Console.IsOutputRedirected;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _lastHundredths = -1;
    private int _lastWidth;

    public void Report(long done)
    {
        int hundredths = total == 0 ? 10000 : (int)Math.Min(10000, done * 10000 / total);
        int step = _terminal ? 100 : 1000;
        lock (_lock)
        {
            // Parallel copy workers report their running totals in any order: never step back.
            if (hundredths <= _lastHundredths || (hundredths / step == _lastHundredths / step && hundredths != 10000 && _lastHundredths >= 0))
            {
                return;
            }

            _lastHundredths = hundredths;
            string line = Line(hundredths, done, _clock.Elapsed.TotalSeconds);
            if (_terminal)
            {
                _out.Write(line.PadRight(_lastWidth) + "\r");
                _lastWidth = line.Length;
            }
            else
            {
                _out.WriteLine(line);
            }

            _out.Flush();
        }
    }

    public void Finish()
    {
        Report(total);
        if (_terminal)
        {
            _out.WriteLine();
        }
    }

    /// <summary>One frame: qemu-img's percentage, then MiB/s and the time left once there is a rate to tell.</summary>
    internal string Line(int hundredths, long done, double seconds)
    {
        string line = string.Create(CultureInfo.InvariantCulture, $"    ({hundredths / 100.0:0.00}/100%)");
        if (seconds < 0.2 || done <= 0)
        {
            return line;
        }

        double rate = done / seconds;
        line += string.Create(CultureInfo.InvariantCulture, $" {rate / (1 << 20):0.0} MiB/s");
        if (hundredths < 10000)
        {
            var left = TimeSpan.FromSeconds(Math.Min((total - done) / rate, TimeSpan.MaxValue.TotalSeconds / 2));
            line += left.TotalHours >= 1
                ? string.Create(CultureInfo.InvariantCulture, $", {(int)left.TotalHours}:{left:mm\\:ss} left")
                : string.Create(CultureInfo.InvariantCulture, $", {left:m\\:ss} left");
        }

        return line;
    }

    public void Dispose()
    {
    }
}
