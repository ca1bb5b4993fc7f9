using FtpCluster.Compute.Serving;
using FtpCluster.Grains.Jobs;
using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Client.Jobs;

/// <summary>
/// Follows a job's results into output files until the job ends: what <c>run</c> does after submitting, and what
/// <c>jobs results</c> does for a job submitted earlier. Lines the files hold already are not written again.
/// </summary>
internal static class JobFollower
{
    /// <summary>Result bodies per call, in bytes: far under Orleans' message limit.</summary>
    private const int PageBytes = 8 << 20;

    /// <summary>How long to wait before asking again when no result is new (the job's own step is far longer).</summary>
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How long the job may stay out of reach (its silo lost, the grain coming back elsewhere) before following fails.</summary>
    private static readonly TimeSpan LossDeadline = TimeSpan.FromMinutes(2);

    public static async Task<JobInfo> FollowAsync(IJobGrain job, BatchOutputFiles output, string inputName, JobProgress progress, CancellationToken cancellation)
    {
        int cursor = 0;
        var lastContact = DateTime.UtcNow;
        while (true)
        {
            try
            {
                var page = await job.Results(cursor, PageBytes).WaitAsync(cancellation);
                foreach (var result in page.Results)
                    if (!output.IsDone(result.Key)) output.Append(OutputLine(result, inputName));
                cursor = page.Next;
                var info = await job.Info().WaitAsync(cancellation);
                lastContact = DateTime.UtcNow;
                progress.Report(info);
                if (page.Finished)
                {
                    progress.Finish(info);
                    return info;
                }
                if (page.Results.Length == 0) await Task.Delay(PollInterval, cancellation);
            }
            catch (Exception e) when (ClusterFailures.IsSiloLoss(e) && DateTime.UtcNow - lastContact < LossDeadline)
            {
                Console.Error.WriteLine($"job: its silo did not answer ({e.Message}); asking again");
                await Task.Delay(TimeSpan.FromSeconds(1), cancellation);
            }
        }
    }

    /// <summary>A result as its output line; a failure's message names the input line, as the reader's own errors do.</summary>
    private static BatchOutputLine OutputLine(CompletionLineResult result, string inputName) => result.Body is { } body
        ? BatchOutputLine.Success(result.Key, System.Text.Encoding.UTF8.GetBytes(body))
        : BatchOutputLine.Failure(result.LineNumber, result.Key, result.ErrorCode!, $"{inputName} line {result.LineNumber}: {result.ErrorMessage}");
}
