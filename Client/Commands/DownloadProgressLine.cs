using System.Diagnostics;
using System.Globalization;

namespace FtpCluster.Client.Commands;

/// <summary>
/// A file download's progress on stderr: one line rewritten in place on a terminal (at most ten times a second); when
/// stderr goes to a file or a pipe, a line at each tenth of each file, so logs stay short.
/// </summary>
internal sealed class DownloadProgressLine : IProgress<(string File, long Done, long Total)>
{
    private static readonly TimeSpan TerminalInterval = TimeSpan.FromMilliseconds(100);

    private readonly bool _terminal = !Console.IsErrorRedirected;
    private readonly Stopwatch _sinceShown = Stopwatch.StartNew();
    private string? _file;
    private long _tenthsShown = -1;

    public void Report((string File, long Done, long Total) value)
    {
        var (file, done, total) = value;
        bool finished = done == total;
        if (file != _file)
        {
            _file = file;
            _tenthsShown = -1;
        }
        string text = $"downloading {file}: {Mib(done)}" + (total >= 0 ? $" / {Mib(total)} MiB" : " MiB");
        if (_terminal)
        {
            if (!finished && _sinceShown.Elapsed < TerminalInterval) return;
            _sinceShown.Restart();
            Console.Error.Write($"\r{text}\u001b[K");
            if (finished) Console.Error.WriteLine();
            return;
        }
        long tenths = total > 0 ? done * 10 / total : 0;
        if (tenths == _tenthsShown && !finished) return;
        _tenthsShown = tenths;
        Console.Error.WriteLine(text);
    }

    private static string Mib(long bytes) => (bytes / (1024.0 * 1024)).ToString("F1", CultureInfo.InvariantCulture);
}
