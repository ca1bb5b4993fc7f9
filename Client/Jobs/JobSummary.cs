using System.Diagnostics;
using System.Globalization;
using FtpCluster.Client.Cluster;
using FtpCluster.Client.Commands;
using FtpCluster.Grains.Jobs;
using Spectre.Console;

namespace FtpCluster.Client.Jobs;

/// <summary>The summary printed at a job's end: a table on stdout, or one JSON object.</summary>
internal static class JobSummary
{
    /// <param name="local">The input's lines the job did not run (refused by the reader); null for a job followed later.</param>
    public static void Print(JobInfo job, BatchRun.LocalLines? local, bool json, PipelineTraffic? traffic)
    {
        int refused = local?.Failed ?? 0;
        int lines = job.Lines + refused, succeeded = job.Completed, failed = job.Failed + refused;
        double tokensPerSecond = job.Seconds > 0 ? job.GeneratedTokens / job.Seconds : 0;
        double sparsity = Sparsity(job);
        if (json)
        {
            CommandSupport.WriteJson(new
            {
                Job = job.Id, job.Status, Lines = lines, Succeeded = succeeded, Failed = failed, job.PromptTokens, job.GeneratedTokens,
                Seconds = Math.Round(job.Seconds, 3),
                GeneratedTokensPerSecond = Math.Round(tokensPerSecond, 1),
                SparsityAchieved = Math.Round(sparsity, 4),
                job.WireBytes,
                traffic?.Deployment,
                traffic?.Stages,
            });
            return;
        }
        var table = new Table().AddColumns("lines", "succeeded", "failed", "prompt tokens", "generated tokens", "seconds", "generated tok/s", "sparsity", "wire bytes");
        foreach (var column in table.Columns) column.RightAligned();
        table.AddRow(Number(lines), Number(succeeded), Number(failed), Number(job.PromptTokens), Number(job.GeneratedTokens),
            job.Seconds.ToString("F1", CultureInfo.InvariantCulture), tokensPerSecond.ToString("F1", CultureInfo.InvariantCulture),
            sparsity.ToString("P1", CultureInfo.InvariantCulture), Number(job.WireBytes));
        AnsiConsole.Write(new Rule($"job {job.Id}: {job.Status}") { Justification = Justify.Left });
        AnsiConsole.Write(table);
        if (job.Error is { } error) AnsiConsole.MarkupLineInterpolated($"[red]{error}[/]");
    }

    /// <summary>The fraction of block computations FTP skipped over every line that ran.</summary>
    public static double Sparsity(JobInfo job) =>
        job.TokensComputed + job.TokensSkipped == 0 ? 0 : (double)job.TokensSkipped / (job.TokensComputed + job.TokensSkipped);

    private static string Number(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
}

/// <summary>
/// Progress on stderr while a job runs: a live line on a terminal; periodic plain lines when stderr is a file or a
/// pipe, so logs stay short.
/// </summary>
internal sealed class JobProgress(BatchRun.LocalLines? local)
{
    private static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(5);

    private readonly IAnsiConsole _stderr = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
    private readonly bool _live = !Console.IsErrorRedirected;
    private readonly Stopwatch _sinceLastLine = Stopwatch.StartNew();
    private int _lastWidth;

    public void Report(JobInfo job)
    {
        string text = Describe(job);
        if (_live)
        {
            _stderr.Write(new Text("\r" + text.PadRight(_lastWidth)));
            _lastWidth = text.Length;
            return;
        }
        if (_sinceLastLine.Elapsed < PlainInterval) return;
        _sinceLastLine.Restart();
        Console.Error.WriteLine(text);
    }

    /// <summary>Ends the live line, or writes the final plain one.</summary>
    public void Finish(JobInfo job)
    {
        if (_live) _stderr.WriteLine();
        else Console.Error.WriteLine(Describe(job));
    }

    private string Describe(JobInfo job)
    {
        int refused = local?.Failed ?? 0, before = local?.Skipped ?? 0;
        string total = local is null ? $"{job.Lines}" : $"{local.Total}";
        string resumed = before > 0 ? $" (+{before} from before)" : "";
        double tokensPerSecond = job.Seconds > 0 ? job.GeneratedTokens / job.Seconds : 0;
        return string.Create(CultureInfo.InvariantCulture,
            $"{job.Id} {job.Status}: {job.Done + refused + before}/{total} lines{resumed}, {job.Failed + refused} failed, " +
            $"{tokensPerSecond:F1} generated tok/s, sparsity {JobSummary.Sparsity(job):P1}, {job.WireBytes:N0} bytes between stages");
    }
}
