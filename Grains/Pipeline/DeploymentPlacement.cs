using System.Security.Cryptography;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Placement;
using FtpCluster.Grains.Planning;
using Microsoft.Extensions.Logging;

namespace FtpCluster.Grains.Pipeline;

/// <summary>The model a deployment runs, as planning needs it.</summary>
/// <param name="LayerCosts">With a router, each layer's share of the tokens it computes; null: every layer costs 1.</param>
internal sealed record DeploymentModel(ModelConfig Config, long BytesPerLayer, double[]? LayerCosts)
{
    /// <summary>
    /// The LM head's work per row over a layer's (their weights' sizes): the last stage computes it for every row a
    /// token is drawn after, which in a batch job's decode steps is every row.
    /// </summary>
    public double HeadCost => (double)Config.VocabSize * Config.Dim / Config.ParametersPerLayer;
}

/// <summary>
/// A silo incarnation a deployment's stages stopped answering on, and the stages it held then. It stays out of the
/// deployment's plans while the membership still lists it as active (not yet declared dead, or cut off and still
/// deciding); once the membership drops it, it is forgotten, so a new incarnation of the node is planned on again.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.LostSilo")]
/// <param name="Token">The token <paramref name="Stages"/> hold: the one of the placement the silo was lost from.</param>
public sealed record LostSilo(
    [property: Id(0)] string NodeName,
    [property: Id(1)] SiloAddress Silo,
    [property: Id(2)] DeployedStage[] Stages,
    [property: Id(3)] DeploymentToken Token);

/// <summary>
/// Where a deployment's stages run, and how that mends when a silo is lost: plans the layers over the silos up and
/// loads a set of stage grains per placement; after a stage fails, probes which silos are gone, plans again over the
/// rest and loads new stages, once however many requests saw the failure. Each new plan is a new epoch.
/// </summary>
/// <remarks>
/// A lost silo is excluded by its incarnation (<see cref="LostSilo"/>), not its node name: a node restarted after a
/// crash, or a silo whose stages answer again after a partition, receives stages in the next placement.
/// Used from inside the coordinator grain, whose turns never overlap, so it takes no locks.
/// </remarks>
internal sealed class DeploymentPlacement(
    string deploymentId, DeploymentRequest request, DeploymentModel model, FtpClusterNodeDirectory nodes, IGrainFactory grains,
    ILogger logger, Func<Task> saveRecovered)
{
    /// <summary>Re-plans one request may go through before it fails with the last error.</summary>
    public const int MaxRecoveriesPerRequest = 5;

    /// <summary>How long recovery from a lost silo may take before the request fails.</summary>
    private static readonly TimeSpan RecoveryDeadline = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Pause between placement attempts while the cluster has not yet declared the lost silo dead (until
    /// then, activations whose directory entry lives on it cannot be registered).
    /// </summary>
    private static readonly TimeSpan PlacementRetryDelay = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a probe of a stage's silo may take before that silo counts as gone.</summary>
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    private readonly Dictionary<SiloAddress, LostSilo> _lost = [];
    private Task? _recovery;

    public DeployedStage[] Stages { get; private set; } = [];

    /// <summary>The current placement's secret: its stages refuse calls without it (a new one per placement).</summary>
    public DeploymentToken Token { get; private set; } = DeploymentToken.New();

    /// <summary>Which plan is current: a step chosen for an older one must be chosen again.</summary>
    public int Epoch { get; private set; }

    public int Placements { get; private set; }

    /// <summary>The silo incarnations kept out of plans now, by node name.</summary>
    public IEnumerable<LostSilo> LostSilos => _lost.Values.OrderBy(l => l.NodeName, StringComparer.Ordinal);

    /// <summary>
    /// The rows of KV-cache room the sequences admitted may hold in every block: each stage's budget (the deployment's,
    /// or its silo's memory budget less the stage's weights) over what a row of room takes in its blocks, at the
    /// tightest stage.
    /// </summary>
    public long MaxCacheRows { get; private set; } = long.MaxValue;

    /// <summary>
    /// The first placement: every stage asked for needs a silo of its own. Its stage grains are numbered after
    /// <paramref name="earlierPlacements"/> (a deployment deployed again gets grains of its own).
    /// </summary>
    public async Task PlaceFirst(int earlierPlacements)
    {
        Placements = earlierPlacements;
        (Stages, Token) = await Place(firstPlacement: true);
    }

    /// <summary>A placement stored by an earlier coordinator activation, taken as it is, with the token its stages hold.</summary>
    public void Resume(DeployedStage[] stages, int placements, IEnumerable<LostSilo> lostSilos, DeploymentToken token)
    {
        (Stages, Placements, Token) = (stages, placements, token);
        foreach (var lost in lostSilos) _lost[lost.Silo] = lost;
    }

    /// <summary>
    /// Runs a step on the current plan (<paramref name="step"/> gets its epoch); when it fails because a stage was
    /// lost, mends the plan and runs it again, up to <see cref="MaxRecoveriesPerRequest"/> times.
    /// </summary>
    public async Task<T> WithRecovery<T>(Func<int, Task<T>> step)
    {
        for (int recoveries = 0; ;)
        {
            int epoch = Epoch;
            try
            {
                return await step(epoch);
            }
            catch (Exception e) when (ClusterFailures.IsStageLoss(e) && ++recoveries <= MaxRecoveriesPerRequest)
            {
                await Recover(epoch, e);
            }
        }
    }

    public IStageGrain Stage(DeployedStage stage) => grains.GetGrain<IStageGrain>(stage.GrainKey);

    public IStageGrain FirstStage() => Stages.Length > 0
        ? Stage(Stages[0])
        : throw new InvalidOperationException($"deployment {deploymentId} has not been deployed");

    /// <summary>Calls every stage, with the placement's token; a stage whose silo is gone has nothing left to do it on.</summary>
    public Task OnEveryStage(Func<IStageGrain, DeploymentToken, Task> call)
    {
        var token = Token;
        return Task.WhenAll(Stages.Select(async s =>
        {
            try
            {
                await call(Stage(s), token);
            }
            catch (Exception e) when (ClusterFailures.IsStageLoss(e))
            {
            }
        }));
    }

    /// <summary>Plans over the silos up (less those known lost) and loads a fresh set of stage grains, under a token of their own.</summary>
    private async Task<(DeployedStage[] Stages, DeploymentToken Token)> Place(bool firstPlacement)
    {
        var active = await nodes.ActiveNodesAsync();
        ForgetDeclaredDead(active);
        var up = active
            .Where(n => !_lost.ContainsKey(n.Silo))
            .OrderBy(n => n.NodeName, StringComparer.Ordinal).ToArray();
        if (up.Length == 0) throw new InvalidOperationException("no silo is up to place stages on");
        if (firstPlacement && up.Length < request.Stages)
            throw new InvalidOperationException(
                $"{request.Stages} stages need {request.Stages} silos, but {up.Length} are up ({string.Join(", ", up.Select(n => n.NodeName))})");
        // After a loss, as many stages as silos survive, at most the number asked for.
        var silos = up.Take(request.Stages).Select(n => new SiloCapacity(n.NodeName, n.Capacity, n.MemoryBudgetBytes)).ToArray();
        int layers = model.Config.Layers;
        var plan = DeploymentPlanner.Plan(layers, silos, model.LayerCosts, model.BytesPerLayer, model.HeadCost);
        MaxCacheRows = CacheRows(plan, up);

        // Each placement has keys of its own: after a re-plan a node may hold other layers, which is another grain.
        // The random part keeps them apart even when the count is not: a coordinator lost between loading a placement
        // and storing it leaves stages under the next count, which its successor would otherwise collide with.
        string prefix = $"{deploymentId}/{Placements++}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        double Cost(int first, int end) => Enumerable.Range(first, end - first).Sum(l => model.LayerCosts?[l] ?? 1.0);
        var stages = plan.Stages.Select(s => new DeployedStage(s.Index, s.Silo, s.FirstLayer, s.EndLayer,
            NodePinnedKey.Create($"{prefix}/stage-{s.Index}", s.Silo), Cost(s.FirstLayer, s.EndLayer) / Cost(0, layers))).ToArray();
        var token = DeploymentToken.New();
        try
        {
            await Task.WhenAll(stages.Select(s => Stage(s).Load(new StageSetup(
                deploymentId, token, s.Index, request.ModelPath, s.FirstLayer, s.EndLayer, IsLast: s.Index == stages.Length - 1,
                request.Storage, request.Wire, request.MaxMessageBytes,
                StageKeys: [.. stages.Select(t => t.GrainKey)], StageEnds: [.. stages.Select(t => t.EndLayer)],
                request.RouterPaths, request.StageAwareRouting, request.PruneNewest))));
        }
        catch
        {
            // A placement that did not load entirely is never used (a retry makes the next one): the stages of it that
            // did load would hold their weights for nobody.
            foreach (var stage in stages)
                _ = Stage(stage).Unload(token);
            throw;
        }
        return (stages, token);
    }

    private long CacheRows(DeploymentPlan plan, FtpClusterNode[] up)
    {
        long bytesPerRow = LayerKvCache.BytesPerRow(model.Config.KvDim);
        long tightest = long.MaxValue;
        foreach (var stage in plan.Stages)
        {
            long budget = request.KvCacheBytesPerStage > 0 ? request.KvCacheBytesPerStage
                : up.First(n => n.NodeName == stage.Silo).MemoryBudgetBytes - stage.LayerCount * model.BytesPerLayer;
            tightest = Math.Min(tightest, Math.Max(0, budget) / (stage.LayerCount * bytesPerRow));
        }
        return tightest;
    }

    /// <summary>
    /// After a step of <paramref name="failedEpoch"/> failed: find which stage silos are gone, re-plan over
    /// the rest and load new stages. Runs once per lost plan; every request that saw the failure awaits it.
    /// </summary>
    private Task Recover(int failedEpoch, Exception failure)
    {
        if (failedEpoch != Epoch) return Task.CompletedTask;
        return _recovery ??= RecoverOnce(failure);
    }

    private async Task RecoverOnce(Exception failure)
    {
        var unanswered = new SortedSet<string>(StringComparer.Ordinal);
        try
        {
            var started = DateTime.UtcNow;
            var (previous, previousToken) = (Stages, Token);
            logger.LogWarning("Deployment {Deployment}: a stage failed ({Failure}); probing its silos", deploymentId, failure.Message);
            await Readmit();
            while (true)
            {
                // A stage whose silo is gone takes its incarnation out of the plan; one that lost its weights
                // on a live silo (see StageNotLoadedException) just gets a fresh grain in the new placement.
                var lost = await ProbeUnanswered(previous, previousToken);
                unanswered.UnionWith(lost.Select(s => s.NodeName));
                await MarkLost(lost, previousToken);
                try
                {
                    // The new plan and its epoch take effect together, once every stage has loaded.
                    var (stages, token) = await Place(firstPlacement: false);
                    (Stages, Token, Epoch) = (stages, token, Epoch + 1);
                    await saveRecovered();
                    logger.LogWarning("Deployment {Deployment}: re-planned without {Lost}: {Plan}", deploymentId,
                        string.Join(", ", unanswered), string.Join(", ", stages.Select(s => $"{s.NodeName} [{s.FirstLayer}, {s.EndLayer})")));
                    break;
                }
                catch (Exception e) when (ClusterFailures.IsSiloLoss(e))
                {
                    if (DateTime.UtcNow - started > RecoveryDeadline)
                        throw new InvalidOperationException(
                            $"the stages could not be placed again within {RecoveryDeadline.TotalSeconds:F0} s of losing {string.Join(", ", unanswered)}: {e.Message}", e);
                    logger.LogInformation("Deployment {Deployment}: placing again after {Error}", deploymentId, e.Message);
                    await Task.Delay(PlacementRetryDelay);
                }
            }
            foreach (var old in previous.Where(s => !unanswered.Contains(s.NodeName)))
                _ = Stage(old).Unload(previousToken);
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException(
                $"silo{(unanswered.Count > 1 ? "s" : "")} {string.Join(", ", unanswered)} left the cluster " +
                $"and the survivors cannot hold the model: {e.Message}", e);
        }
        finally
        {
            _recovery = null;
        }
    }

    /// <summary>
    /// Lost silos whose stages answer again (a partition healed before the membership declared them dead) are planned
    /// on again, and the stages they kept from before are unloaded: nothing uses them, and they hold a slice's weights.
    /// Runs at each recovery, and from the coordinator's timer between recoveries (during one, the recovery decides);
    /// a silo still cut off costs one probe timeout.
    /// </summary>
    public Task ReadmitAnswering() => _recovery is null ? Readmit() : Task.CompletedTask;

    private async Task Readmit()
    {
        if (_lost.Count == 0) return;
        ForgetDeclaredDead(await nodes.ActiveNodesAsync());
        var candidates = _lost.Values.ToArray();
        var probes = await Task.WhenAll(candidates.Select(l => ProbeUnanswered(l.Stages, l.Token)));
        var unanswered = probes.SelectMany(p => p).Select(s => s.NodeName).ToHashSet(StringComparer.Ordinal);
        foreach (var healed in candidates.Where(l => !unanswered.Contains(l.NodeName)))
        {
            _lost.Remove(healed.Silo);
            foreach (var stage in healed.Stages)
                _ = Stage(stage).Unload(healed.Token);
            logger.LogWarning("Deployment {Deployment}: silo {Node} ({Silo}) answers again; it is planned on from the next placement",
                deploymentId, healed.NodeName, healed.Silo);
        }
        if (candidates.Length != _lost.Count) await saveRecovered();
    }

    /// <summary>
    /// Keeps out of later plans the incarnations that held <paramref name="unanswered"/>, while the membership lists
    /// them; a node it no longer lists is out of every plan already, and its next incarnation is welcome.
    /// </summary>
    private async Task MarkLost(IReadOnlyCollection<DeployedStage> unanswered, DeploymentToken token)
    {
        if (unanswered.Count == 0) return;
        var active = await nodes.ActiveNodesAsync();
        foreach (var node in unanswered.GroupBy(s => s.NodeName))
        {
            if (active.FirstOrDefault(n => n.NodeName == node.Key) is not { } silo) continue;
            // A lost silo is out of later plans, so what it holds all comes from the one placement it was lost from.
            DeployedStage[] earlier = _lost.TryGetValue(silo.Silo, out var known) && known.Token == token ? known.Stages : [];
            _lost[silo.Silo] = new LostSilo(node.Key, silo.Silo, [.. earlier, .. node], token);
        }
    }

    /// <summary>Forgets the lost incarnations the membership no longer lists: declared dead, their stages went with them.</summary>
    private void ForgetDeclaredDead(IReadOnlyList<FtpClusterNode> active)
    {
        var listed = active.Select(n => n.Silo).ToHashSet();
        foreach (var silo in _lost.Keys.Where(s => !listed.Contains(s)).ToArray())
            _lost.Remove(silo);
    }

    /// <summary>
    /// The stages among <paramref name="stages"/> that no longer answer. The stages themselves are the probes:
    /// they are active, so reaching them needs no new activation, whose directory entry could live on
    /// the very silo that is gone (until the cluster declares it dead, such registrations fail).
    /// </summary>
    private async Task<DeployedStage[]> ProbeUnanswered(IEnumerable<DeployedStage> stages, DeploymentToken token)
    {
        var probes = stages.Select(async s =>
        {
            try
            {
                await Stage(s).Report(token).WaitAsync(ProbeTimeout);
                return null;
            }
            catch (Exception e) when (ClusterFailures.IsSiloLoss(e))
            {
                return s;
            }
            catch (StageNotLoadedException)
            {
                return null;
            }
        });
        return (await Task.WhenAll(probes)).OfType<DeployedStage>().ToArray();
    }
}
