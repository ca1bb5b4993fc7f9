using Xunit.Abstractions;

namespace FtpCluster.Cluster.Tests.Chaos;

/// <summary>
/// The fault-free run of <see cref="ChaosJob"/>, once per test class: the answers every faulted run must give, line for line.
/// </summary>
public sealed class ChaosBaseline : IAsyncLifetime
{
    private IReadOnlyDictionary<string, string>? _answers;

    public IReadOnlyDictionary<string, string> Answers => _answers ?? throw new InvalidOperationException("the fault-free run has not run");

    public ChaosOutcome? Outcome { get; private set; }

    public async Task InitializeAsync()
    {
        // A class whose scenarios are all skipped (no redis-server, no models) runs no job either.
        if (new ChaosFactAttribute().Skip is not null) return;
        using var cluster = await ChaosCluster.StartAsync(ChaosFactAttribute.NamespacesAvailable);
        (Outcome, _answers) = await ChaosJob.RunAsync(cluster, "no fault", fault: null, faultFree: null);
        ChaosTable.Append(Outcome);
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

/// <summary>
/// The chaos table: each scenario's row, appended to the markdown file <c>FTPCLUSTER_CHAOS_TABLE</c> names (when it does),
/// so docs/reliability.md is written from a real run.
/// </summary>
public static class ChaosTable
{
    public const string Variable = "FTPCLUSTER_CHAOS_TABLE";

    private static readonly Lock Writing = new();

    public static void Append(ChaosOutcome outcome)
    {
        if (Environment.GetEnvironmentVariable(Variable) is not { Length: > 0 } path) return;
        lock (Writing)
        {
            if (!File.Exists(path)) File.WriteAllText(path, ChaosOutcome.TableHeader + "\n");
            File.AppendAllText(path, outcome.TableRow + "\n");
        }
    }
}

/// <summary>
/// Faults during a batch job on Redis-clustered silo processes, each silo in a network namespace of its own where the
/// machine allows it: every <c>custom_id</c> is answered exactly once, with the fault-free run's answer, within
/// <see cref="ChaosJob.BoundAfterFault"/> of the fault, and no silo left running holds stages of a plan that is gone.
/// One cluster per scenario. Run: <c>dotnet test -c Release tests/FtpCluster.Cluster.Tests --filter FullyQualifiedName~Chaos</c>.
/// </summary>
public sealed class ChaosTests(ChaosBaseline baseline, ITestOutputHelper output) : IClassFixture<ChaosBaseline>
{
    [ChaosFact]
    public Task A_stage_silo_killed() => Run("SIGKILL a stage silo", cluster => homes =>
    {
        string victim = homes.StageOnly;
        return new Fault("kill", [victim], () => Task.Run(() => cluster.Kill(victim)), () => Task.CompletedTask);
    }, coordinatorKept: true);

    [ChaosFact]
    public Task The_silo_of_the_job_and_coordinator_killed() => Run("SIGKILL the silo of the job and coordinator grains", cluster => homes =>
    {
        // One silo holds both (jobBesideCoordinator): two of three silos killed at once would be another fault, a lost
        // majority, which the lone survivor can only declare once the dead silos' IAmAlive entries go stale (60-90 s).
        string victim = homes.Coordinator;
        return new Fault("kill", [victim], () => Task.Run(() => cluster.Kill(victim)), () => Task.CompletedTask);
    }, jobBesideCoordinator: true);

    /// <summary>The first silo: the membership primary under development clustering; with Redis clustering, a silo like the others.</summary>
    [ChaosFact]
    public Task The_primary_killed() => Run("SIGKILL the primary (silo a)", cluster => _ =>
        new Fault("kill", [ChaosCluster.NodeNames[0]], () => Task.Run(() => cluster.Kill(ChaosCluster.NodeNames[0])), () => Task.CompletedTask));

    [ChaosFact(ChaosNeeds.NetworkNamespaces)]
    public Task A_stage_silo_partitioned_and_healed() => Run("partition a stage silo (link down, up once detected)", cluster => homes =>
    {
        string victim = homes.StageOnly;
        return new Fault("partition", [victim], () => Task.Run(() => cluster.Partition(victim)), () => Task.Run(() => cluster.Heal(victim)),
            client => cluster.RejoinAsync(client, victim));
    }, coordinatorKept: true);

    [ChaosFact(ChaosNeeds.Netem)]
    public Task Latency_and_loss_on_a_link() => Run("50 ms latency and 2% loss on a stage silo's link", cluster => homes =>
    {
        string device = NetworkNode.Interface;
        string space = cluster.Namespace(homes.StageOnly);
        return new Fault("netem", [],
            () => Task.Run(() => TrafficControl.Check("-n", space, "qdisc", "add", "dev", device, "root", "netem", "delay", "50ms", "10ms", "loss", "2%")),
            () => Task.CompletedTask);
    });

    /// <summary>Down for a stated time, long enough that job results and reminders are written while it is away.</summary>
    [ChaosFact]
    public Task Redis_restarted() => Run($"restart Redis (SIGKILL, {RedisDowntime.TotalSeconds:F0} s down, started on its files)", cluster => _ =>
        new Fault("redis", [], () => cluster.Redis.KillAndRestartAsync(RedisDowntime), () => Task.CompletedTask));

    private static readonly TimeSpan RedisDowntime = TimeSpan.FromSeconds(12);

    [ChaosFact]
    public Task A_stage_silo_stopped_gracefully() => Run("SIGTERM a stage silo", cluster => homes =>
    {
        string victim = homes.StageOnly;
        return new Fault("stop", [victim], () => cluster.TerminateAsync(victim), () => Task.CompletedTask);
    }, coordinatorKept: true);

    /// <param name="coordinatorKept">
    /// The fault spares the coordinator's silo, so its activation must outlive the fault: no silo resumes the deployment
    /// from storage (the in-cluster directory deactivated a coordinator whose registration was on the lost silo).
    /// </param>
    private async Task Run(string scenario, Func<ChaosCluster, Func<JobHomes, Fault>> fault, bool jobBesideCoordinator = false, bool coordinatorKept = false)
    {
        using var cluster = await ChaosCluster.StartAsync(ChaosFactAttribute.NamespacesAvailable);
        try
        {
            var (outcome, _) = await ChaosJob.RunAsync(cluster, scenario, fault(cluster), baseline.Answers, jobBesideCoordinator);
            output.WriteLine(ChaosOutcome.TableHeader);
            output.WriteLine(baseline.Outcome?.TableRow);
            output.WriteLine(outcome.TableRow);
            ChaosTable.Append(outcome);
            Assert.Equal(0, outcome.LinesLost);
            Assert.Equal(0, outcome.LinesDuplicated);
            Assert.True(outcome.OutputIdentical, $"{scenario}: the answers differ from the fault-free run's");
            if (coordinatorKept)
                foreach (string node in ChaosCluster.NodeNames)
                    Assert.DoesNotContain("with its stored plan", cluster.Silo(node).Output, StringComparison.Ordinal);
        }
        catch
        {
            // What each silo said is the only account of what the cluster did: a failed scenario shows it.
            foreach (string node in ChaosCluster.NodeNames)
                output.WriteLine($"--- silo {node} ---{Environment.NewLine}{cluster.Silo(node).Output}");
            throw;
        }
    }
}
