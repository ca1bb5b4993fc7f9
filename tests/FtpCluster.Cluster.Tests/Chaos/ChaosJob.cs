using System.Diagnostics;
using System.Globalization;
using FtpCluster.Client.Cluster;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Jobs;
using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Cluster.Tests.Chaos;

/// <summary>Where the job's grains landed, which the scenario picks its victims by.</summary>
public sealed record JobHomes(string Coordinator, string Job)
{
    /// <summary>A silo that hosts a stage (every silo does) and neither the coordinator nor the job.</summary>
    public string StageOnly => ChaosCluster.NodeNames.First(n => n != Coordinator && n != Job);
}

/// <summary>
/// A fault, applied to a running job and ended again. <see cref="Start"/> runs once the job has finished
/// <see cref="ChaosJob.FaultAfterLines"/> lines; <see cref="End"/> runs once the cluster has noticed the fault (the
/// membership or the plan dropped every victim), or at once when the fault has no victims to notice.
/// </summary>
/// <param name="Victims">The silos the fault takes out; the observer's client avoids their gateways.</param>
/// <param name="Settle">After the job: brings the cluster to rest (a healed silo rejoins) before its memory is checked; says what it did.</param>
public sealed record Fault(string Name, IReadOnlyList<string> Victims, Func<Task> Start, Func<Task> End, Func<IClusterClient, Task<string>>? Settle = null);

/// <summary>One row of the chaos table: what a scenario measured.</summary>
/// <param name="DetectedAfter">Seconds from the fault until the membership or the deployment's plan dropped every victim; null: no silo to drop.</param>
/// <param name="RecoveredAfter">Seconds from the fault until a line finished after the fault was detected (or, with no silo to drop, after it began).</param>
/// <param name="Seconds">The whole job, start to end.</param>
/// <param name="Notes">Which silos the fault took out, and what else happened (how a partitioned silo came back).</param>
public sealed record ChaosOutcome(string Scenario, double? DetectedAfter, double? RecoveredAfter, int LinesLost, int LinesDuplicated,
    bool OutputIdentical, double Seconds, string Notes = "")
{
    public const string TableHeader =
        "| scenario | detected after (s) | recovered after (s) | lines lost | lines duplicated | output identical | job (s) | notes |\n" +
        "|---|---:|---:|---:|---:|:---:|---:|---|";

    public string TableRow => string.Create(CultureInfo.InvariantCulture,
        $"| {Scenario} | {Format(DetectedAfter)} | {Format(RecoveredAfter)} | {LinesLost} | {LinesDuplicated} | {(OutputIdentical ? "yes" : "no")} | {Seconds:F1} | {Notes} |");

    private static string Format(double? seconds) => seconds is { } s ? s.ToString("F1", CultureInfo.InvariantCulture) : "—";
}

/// <summary>
/// The chaos suite's batch job, mixed greedy and seeded completions on a three-stage deployment of aidreams260K, run on a
/// <see cref="ChaosCluster"/> with or without a fault: it returns each line's answer and what the fault cost.
/// </summary>
public static class ChaosJob
{
    /// <summary>The lines per job: <c>FTPCLUSTER_CHAOS_LINES</c> (at least 8) for longer runs, 12 by default (the suite stays within minutes).</summary>
    public static int Lines { get; } = int.TryParse(Environment.GetEnvironmentVariable("FTPCLUSTER_CHAOS_LINES"), NumberStyles.None,
        CultureInfo.InvariantCulture, out int lines) && lines >= 8 ? lines : 12;

    /// <summary>The fault lands once this many lines are done: mid-job, by the job's own progress rather than a delay.</summary>
    public static int FaultAfterLines => Lines / 4;

    public const int MaxTokens = 48;

    /// <summary>
    /// The bound on a job after its fault: the membership declares a killed silo dead within about 30 s (Orleans' probes),
    /// recovery gives up after 60 s, and a 2-core machine shared with other work runs all of it slowly.
    /// </summary>
    public static readonly TimeSpan BoundAfterFault = TimeSpan.FromMinutes(2);

    private const string Deployment = "chaos";

    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Runs the job on <paramref name="cluster"/>, faulted by <paramref name="fault"/> (chosen once the grains' homes are
    /// known) unless it is null. With <paramref name="jobBesideCoordinator"/> the job grain is made again under new ids
    /// until it lands on the coordinator's silo (placement is random), so that one silo holds both.
    /// </summary>
    public static async Task<(ChaosOutcome Outcome, IReadOnlyDictionary<string, string> Answers)> RunAsync(
        ChaosCluster cluster, string scenario, Func<JobHomes, Fault>? fault, IReadOnlyDictionary<string, string>? faultFree,
        bool jobBesideCoordinator = false)
    {
        var lines = JobLines.Make(Lines, MaxTokens);
        string jobId;
        JobHomes homes;
        await using (var setup = await cluster.ConnectAsync(ChaosCluster.NodeNames))
        {
            await setup.Client.GetGrain<ICoordinatorGrain>(Deployment).Deploy(new DeploymentRequest(JobLines.Aidreams, Stages: 3));
            string coordinator = await setup.Client.GetGrain<ICoordinatorGrain>(Deployment).NodeName();
            for (int attempt = 1; ; attempt++)
            {
                jobId = $"job_{Guid.NewGuid():N}";
                var created = await setup.Client.GetGrain<IJobGrain>(jobId).Create(new JobSpec(Deployment, "chaos.jsonl", MaxConcurrent: 4));
                homes = new JobHomes(coordinator, created.Host);
                if (!jobBesideCoordinator || created.Host == coordinator) break;
                // One in three lands there: 40 misses in a row would be a placement that never does.
                Assert.True(attempt < 40, $"{scenario}: {attempt} job grains, none placed on the coordinator's silo {coordinator}");
            }
            await setup.Client.GetGrain<IJobGrain>(jobId).AddLines(lines);
        }
        var chosen = fault?.Invoke(homes);
        string[] victims = [.. chosen?.Victims ?? []];
        await using var observer = await cluster.ConnectAsync([.. ChaosCluster.NodeNames.Except(victims)]);
        var client = observer.Client;
        var job = client.GetGrain<IJobGrain>(jobId);
        var clock = Stopwatch.StartNew();
        await job.Start();

        double? faultAt = null, detectedAt = null, recoveredAt = null;
        int doneAtDetection = 0;
        var deadline = TimeSpan.FromMinutes(5);
        while (true)
        {
            var info = await Poll(() => job.Info());
            double now = clock.Elapsed.TotalSeconds;
            if (info is { } i && JobStatus.IsFinal(i.Status))
            {
                // The lines left at the detection finished between two polls.
                if (detectedAt is not null && doneAtDetection < lines.Length) recoveredAt ??= now;
                break;
            }
            if (chosen is not null && faultAt is null && info is { Done: var done } && done >= FaultAfterLines)
            {
                Assert.True(done < lines.Length, $"{scenario}: the job ended before the fault could land");
                faultAt = now;
                deadline = clock.Elapsed + BoundAfterFault;
                await chosen.Start();
            }
            else if (faultAt is not null && detectedAt is null && await Noticed(client, victims))
            {
                detectedAt = clock.Elapsed.TotalSeconds;
                doneAtDetection = info?.Done ?? 0;
                await chosen!.End();
            }
            else if (detectedAt is not null && recoveredAt is null && info is { Done: var later } && later > doneAtDetection)
            {
                recoveredAt = now;
            }
            Assert.True(clock.Elapsed < deadline, $"{scenario}: job {jobId} is not done {deadline.TotalSeconds:F0} s after it started " +
                $"(fault at {faultAt:F1} s, detected at {detectedAt:F1} s, {info?.Done} of {lines.Length} lines done)");
            await Task.Delay(PollInterval);
        }
        double seconds = clock.Elapsed.TotalSeconds;
        var final = await job.Info();
        Assert.True(final.Status == JobStatus.Completed, $"{scenario}: job {jobId} ended {final.Status}: {final.Error}");

        var results = await JobLines.AllResults(job);
        var answers = results.GroupBy(r => r.Key).ToDictionary(g => g.Key, g => JobLines.Answer(g.First()));
        int lost = lines.Count(l => !answers.ContainsKey(l.Key));
        int duplicated = results.Length - answers.Count;
        bool identical = faultFree is null || lines.All(l => answers.GetValueOrDefault(l.Key) == faultFree.GetValueOrDefault(l.Key));
        string[] notes = [.. victims.Length > 0 ? [$"silo{(victims.Length > 1 ? "s" : "")} {string.Join(", ", victims)}"] : Array.Empty<string>(),
            .. chosen?.Settle is { } settle ? [await settle(client)] : Array.Empty<string>()];
        var outcome = new ChaosOutcome(scenario, victims.Length > 0 ? Since(faultAt, detectedAt) : null, Since(faultAt, recoveredAt),
            lost, duplicated, identical, seconds, string.Join("; ", notes));
        await AssertNoStrandedStages(cluster, client, scenario);
        return (outcome, answers);
    }

    private static double? Since(double? fault, double? then) => fault is { } f && then is { } t ? t - f : null;

    /// <summary>Whether the cluster has dropped every victim: from the membership, or from the deployment's plan (which re-plans first).</summary>
    private static async Task<bool> Noticed(IClusterClient client, string[] victims)
    {
        if (victims.Length == 0) return true;
        var active = await Poll(() => client.GetGrain<IClusterNodesGrain>(0).GetActiveNodes());
        if (active is not null && !active.Any(n => victims.Contains(n.NodeName))) return true;
        var stages = await Poll(() => client.GetGrain<ICoordinatorGrain>(Deployment).Stages());
        return stages is { Length: > 0 } && !stages.Any(s => victims.Contains(s.NodeName));
    }

    /// <summary>A call's answer, or null when a silo it needed is gone for now (the next poll asks again).</summary>
    private static async Task<T?> Poll<T>(Func<Task<T>> call) where T : class
    {
        try
        {
            return await call().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (ClusterFailures.IsSiloLoss(e))
        {
            return null;
        }
    }

    /// <summary>
    /// Every silo still running holds only stages of the deployment's current plan: what earlier plans loaded on survivors is
    /// unloaded. The old stages are unloaded without waiting, so this waits a little for them.
    /// </summary>
    private static async Task AssertNoStrandedStages(ChaosCluster cluster, IClusterClient client, string scenario)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var current = (await client.GetGrain<ICoordinatorGrain>(Deployment).Stages()).Select(s => s.GrainKey).ToHashSet(StringComparer.Ordinal);
            var running = ChaosCluster.NodeNames.Where(n => !cluster.Silo(n).Exited.IsCompleted).ToArray();
            var stranded = new List<string>();
            foreach (string node in running)
            {
                var info = await Poll(() => ChaosCluster.InfoAsync(client, node));
                if (info is null) stranded.Add($"{node}: does not answer");
                else stranded.AddRange(info.Stages.Where(s => !current.Contains(s.GrainKey)).Select(s => $"{node}: {s.GrainKey} ({s.WeightBytes:N0} bytes)"));
            }
            if (stranded.Count == 0) return;
            Assert.True(DateTime.UtcNow < deadline, $"{scenario}: silos hold stages of no current plan 30 s after the job: {string.Join("; ", stranded)}");
            await Task.Delay(500);
        }
    }
}
