using System.Diagnostics;
using System.Globalization;
using FtpCluster.Client.Cluster;
using FtpCluster.Client.Commands;
using FtpCluster.Compute.Serving;
using FtpCluster.Grains.Pipeline;
using Spectre.Console;

namespace FtpCluster.Client.Jobs;

/// <summary>A job's totals as its results arrive, and the summary printed at its end.</summary>
internal sealed class JobSummary
{
    private readonly Stopwatch _clock = new();
    private TimeSpan? _seconds;

    public int Lines => Succeeded + Failed;
    public int Succeeded { get; private set; }
    public int Failed { get; private set; }
    public long PromptTokens { get; private set; }
    public long GeneratedTokens { get; private set; }
    public long TokensComputed { get; private set; }
    public long TokensSkipped { get; private set; }
    public long WireBytes { get; private set; }

    /// <summary>From the first line handed to the cluster to the last result.</summary>
    public double Seconds => (_seconds ?? _clock.Elapsed).TotalSeconds;

    public double GeneratedTokensPerSecond => Seconds > 0 ? GeneratedTokens / Seconds : 0;

    /// <summary>The fraction of block computations FTP skipped over every line that ran.</summary>
    public double SparsityAchieved => TokensComputed + TokensSkipped == 0 ? 0 : (double)TokensSkipped / (TokensComputed + TokensSkipped);

    public void Start()
    {
        if (!_clock.IsRunning && _seconds is null) _clock.Start();
    }

    public void Add(CompletionLineResult result)
    {
        if (result.Succeeded) Succeeded++;
        else Failed++;
        PromptTokens += result.PromptTokens;
        GeneratedTokens += result.CompletionTokens;
        TokensComputed += result.TokensComputed;
        TokensSkipped += result.TokensSkipped;
        WireBytes += result.WireBytes;
    }

    public void Add(BatchLineError error) => Failed++;

    public void Stop() => _seconds = _clock.Elapsed;

    /// <summary>A table on stdout, or with <paramref name="json"/> one JSON object.</summary>
    public void Print(bool json, PipelineTraffic traffic)
    {
        if (json)
        {
            CommandSupport.WriteJson(new
            {
                Lines, Succeeded, Failed, PromptTokens, GeneratedTokens,
                Seconds = Math.Round(Seconds, 3),
                GeneratedTokensPerSecond = Math.Round(GeneratedTokensPerSecond, 1),
                SparsityAchieved = Math.Round(SparsityAchieved, 4),
                WireBytes,
                traffic.Deployment,
                traffic.Stages,
            });
            return;
        }
        var table = new Table().AddColumn("lines").AddColumn("succeeded").AddColumn("failed").AddColumn("prompt tokens")
            .AddColumn("generated tokens").AddColumn("seconds").AddColumn("generated tok/s").AddColumn("sparsity").AddColumn("wire bytes");
        foreach (var column in table.Columns) column.RightAligned();
        table.AddRow(Number(Lines), Number(Succeeded), Number(Failed), Number(PromptTokens), Number(GeneratedTokens),
            Seconds.ToString("F1", CultureInfo.InvariantCulture), GeneratedTokensPerSecond.ToString("F1", CultureInfo.InvariantCulture),
            SparsityAchieved.ToString("P1", CultureInfo.InvariantCulture), Number(WireBytes));
        AnsiConsole.Write(table);
    }

    private static string Number(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
}

/// <summary>
/// Progress on stderr while a job runs: a live line on a terminal; periodic plain lines when stderr is a file or a
/// pipe, so logs stay short.
/// </summary>
internal sealed class JobProgress(int totalLines, int resumedLines)
{
    private static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(5);

    private readonly IAnsiConsole _stderr = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
    private readonly bool _live = !Console.IsErrorRedirected;
    private readonly Stopwatch _sinceLastLine = Stopwatch.StartNew();
    private string _last = "";

    public void Report(JobSummary summary)
    {
        string text = Describe(summary);
        if (_live)
        {
            _stderr.Write(new Text($"\r{text}".PadRight(Math.Max(_last.Length + 1, text.Length + 1))));
            _last = text;
            return;
        }
        if (_sinceLastLine.Elapsed < PlainInterval) return;
        _sinceLastLine.Restart();
        Console.Error.WriteLine(text);
    }

    /// <summary>Ends the live line, or writes the final plain one.</summary>
    public void Finish(JobSummary summary)
    {
        if (_live) _stderr.WriteLine();
        else Console.Error.WriteLine(Describe(summary));
    }

    private string Describe(JobSummary s)
    {
        string resumed = resumedLines > 0 ? $" (+{resumedLines} from before)" : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"run: {s.Lines + resumedLines}/{totalLines} lines{resumed}, {s.Failed} failed, {s.GeneratedTokensPerSecond:F1} generated tok/s, " +
            $"sparsity {s.SparsityAchieved:P1}, {s.WireBytes:N0} bytes between stages");
    }
}
