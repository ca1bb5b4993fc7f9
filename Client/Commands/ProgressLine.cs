namespace FtpCluster.Client.Commands;

/// <summary>
/// Progress of a long command on stderr: one line rewritten in place on a terminal; when stderr goes to a
/// file or a pipe, a line at each tenth of the way, so logs stay short.
/// </summary>
internal sealed class ProgressLine(string label, int total)
{
    private readonly bool _terminal = !Console.IsErrorRedirected;
    private int _tenthsShown = -1;

    public void Report(int done)
    {
        string text = $"{label}: {done}/{total}";
        if (_terminal)
        {
            Console.Error.Write($"\r{text}");
            if (done == total) Console.Error.WriteLine();
            return;
        }
        int tenths = total == 0 ? 10 : done * 10 / total;
        if (tenths == _tenthsShown) return;
        _tenthsShown = tenths;
        Console.Error.WriteLine(text);
    }
}
