using System.Text.Json;
using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Jobs;
using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Cluster.Tests;

/// <summary>What jobs of token-id prompts look like, and what of their answers must not depend on the run.</summary>
internal static class JobLines
{
    public static string Aidreams => SharedModels.PathTo("aidreams260K", "aidreams260K.bin");

    /// <summary>Greedy and seeded completions of token-id prompts, <paramref name="maxTokens"/> each.</summary>
    public static CompletionLine[] Make(int count, int maxTokens) =>
        [.. Enumerable.Range(0, count).Select(i => new CompletionLine($"line-{i}", i + 1, "/v1/completions", JsonSerializer.Serialize(new
        {
            model = "aidreams260K",
            prompt = new[] { 1, 259 + i % 7, 300 + i % 11, 400 + i % 13 },
            max_tokens = maxTokens,
            temperature = i % 2 == 0 ? 0 : 0.8,
            seed = i,
        })))];

    public static string Answer(CompletionLineResult result)
    {
        Assert.True(result.Succeeded, $"{result.Key}: {result.ErrorCode} {result.ErrorMessage}");
        using var body = JsonDocument.Parse(result.Body!);
        var choice = body.RootElement.GetProperty("choices")[0];
        return $"{choice.GetProperty("text").GetString()}|{choice.GetProperty("finish_reason").GetString()}|{result.CompletionTokens}";
    }

    public static async Task<CompletionLineResult[]> AllResults(IJobGrain job)
    {
        var all = new List<CompletionLineResult>();
        int next = 0;
        while (true)
        {
            var page = await job.Results(next, 1 << 20);
            all.AddRange(page.Results);
            next = page.Next;
            if (page.Results.Length == 0) return [.. all];
        }
    }
}

/// <summary>Jobs in the cluster: run to the end, cancelled in the middle, and followed by pages.</summary>
public sealed class JobTests(ThreeSiloCluster cluster) : IClassFixture<ThreeSiloCluster>
{
    private static readonly int[] ShortPrompt = [1, 2, 3];

    private async Task<string> Deploy()
    {
        string deployment = $"jobs-{Guid.NewGuid():N}";
        await cluster.Client.GetGrain<ICoordinatorGrain>(deployment).Deploy(new DeploymentRequest(JobLines.Aidreams, Stages: 2));
        return deployment;
    }

    private async Task<JobInfo> WaitFinal(IJobGrain job)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (true)
        {
            var info = await job.Info();
            if (JobStatus.IsFinal(info.Status)) return info;
            Assert.True(DateTime.UtcNow < deadline, $"job {info.Id} still {info.Status} after 2 minutes: {info.Done}/{info.Lines}");
            await Task.Delay(100);
        }
    }

    [SharedModelsFact]
    public async Task A_job_runs_every_line_once_and_its_results_page_in_the_order_they_finished()
    {
        string deployment = await Deploy();
        var job = cluster.Client.GetGrain<IJobGrain>($"job_{Guid.NewGuid():N}");
        await job.Create(new JobSpec(deployment, "lines.jsonl", MaxConcurrent: 5));
        var lines = JobLines.Make(40, maxTokens: 12);
        await job.AddLines(lines[..25]);
        Assert.Equal(40, await job.AddLines(lines[25..]));
        Assert.Equal(JobStatus.InProgress, (await job.Start()).Status);

        var info = await WaitFinal(job);
        Assert.Equal(JobStatus.Completed, info.Status);
        Assert.Equal((40, 40, 0), (info.Lines, info.Completed, info.Failed));
        Assert.Equal(40 * 4, info.PromptTokens);
        Assert.True(info.WireBytes > 0, "two stages: rows crossed between them");

        // Small pages: every result comes once, whatever the page size.
        var paged = new List<CompletionLineResult>();
        for (int next = 0; ;)
        {
            var page = await job.Results(next, maxBytes: 1);
            paged.AddRange(page.Results);
            next = page.Next;
            if (page.Finished) break;
            Assert.Single(page.Results);
        }
        Assert.Equal(lines.Select(l => l.Key).Order(), paged.Select(r => r.Key).Order());
        // Each line ends at its 12 tokens or at EOS; the job's totals are its lines' sums.
        Assert.All(paged, r => Assert.InRange(r.CompletionTokens, 1, 12));
        Assert.Equal(paged.Sum(r => (long)r.CompletionTokens), info.GeneratedTokens);
        Assert.Equal(paged.Sum(r => r.TokensComputed), info.TokensComputed);
        await Assert.ThrowsAnyAsync<Exception>(() => job.AddLines(JobLines.Make(1, 4)));
    }

    [Fact]
    public async Task A_4000_token_answer_completes_in_steps_none_of_which_is_a_long_call()
    {
        // A synthesized model has no tokenizer, so no EOS: the answer runs to its max_tokens.
        string model = Directory.CreateTempSubdirectory("ftp-long-").FullName;
        try
        {
            ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with { MaxPositions = 4200 }, model);
            string deployment = $"long-{Guid.NewGuid():N}";
            await cluster.Client.GetGrain<ICoordinatorGrain>(deployment).Deploy(new DeploymentRequest(model, Stages: 2));
            var job = cluster.Client.GetGrain<IJobGrain>($"job_{Guid.NewGuid():N}");
            await job.Create(new JobSpec(deployment, "long.jsonl", MaxConcurrent: 1));
            await job.AddLines([new CompletionLine("long", 1, "/v1/completions", JsonSerializer.Serialize(new
            {
                model = Path.GetFileName(model), prompt = ShortPrompt, max_tokens = 4000, temperature = 0,
            }))]);
            await job.Start();
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(5);
            JobInfo info;
            while (!JobStatus.IsFinal((info = await job.Info()).Status))
            {
                Assert.True(DateTime.UtcNow < deadline, $"the 4,000-token answer is not done after 5 minutes");
                await Task.Delay(100);
            }
            var result = Assert.Single(await JobLines.AllResults(job));
            Assert.True(result.Succeeded, result.ErrorMessage);
            Assert.Equal(4000, result.CompletionTokens);
            using var body = JsonDocument.Parse(result.Body!);
            Assert.Equal("length", body.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        }
        finally
        {
            Directory.Delete(model, recursive: true);
        }
    }

    [SharedModelsFact]
    public async Task Each_line_is_pruned_by_the_router_its_sparsity_names()
    {
        string folder = Directory.CreateTempSubdirectory("ftp-routers-").FullName;
        try
        {
            // Two static routers of mean sparsity 0.25 and 0.5 (block 0 dense, as router static makes them).
            string[] routers = [Path.Combine(folder, "quarter.json"), Path.Combine(folder, "half.json")];
            using (var checkpoint = Checkpoint.Open(JobLines.Aidreams))
                for (int i = 0; i < routers.Length; i++)
                    RouterArtifact.From(new StaticRouter(), SparsitySchedule.DenseFirstBlock(0.25 * (i + 1), checkpoint.Config.Layers),
                        ModelFingerprint.Of(checkpoint)).Save(routers[i]);
            string deployment = $"routers-{Guid.NewGuid():N}";
            await cluster.Client.GetGrain<ICoordinatorGrain>(deployment).Deploy(new DeploymentRequest(JobLines.Aidreams, Stages: 2, Routers: routers));

            // The same long prompt four times: with no sparsity (the first router), 0.25, 0.5, and one no router has.
            int[] prompt = [1, .. Enumerable.Range(0, 60).Select(i => 259 + i * 3)];
            CompletionLine Line(string key, double? sparsity) => new(key, 1, "/v1/completions", JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["model"] = "aidreams260K", ["prompt"] = prompt, ["max_tokens"] = 8, ["temperature"] = 0,
                ["ftp"] = sparsity is { } s ? new Dictionary<string, double> { ["sparsity"] = s } : null,
            }));
            var job = cluster.Client.GetGrain<IJobGrain>($"job_{Guid.NewGuid():N}");
            await job.Create(new JobSpec(deployment, "routers.jsonl", MaxConcurrent: 4));
            await job.AddLines([Line("default", null), Line("quarter", 0.25), Line("half", 0.5), Line("unknown", 0.4)]);
            await job.Start();
            Assert.Equal(JobStatus.Completed, (await WaitFinal(job)).Status);
            var results = (await JobLines.AllResults(job)).ToDictionary(r => r.Key);

            double Sparsity(string key) => (double)results[key].TokensSkipped / (results[key].TokensComputed + results[key].TokensSkipped);
            Assert.Equal(results["quarter"].TokensSkipped, results["default"].TokensSkipped);
            Assert.InRange(Sparsity("quarter"), 0.05, 0.3);
            Assert.True(Sparsity("half") > Sparsity("quarter") + 0.1, $"half {Sparsity("half")}, quarter {Sparsity("quarter")}");
            Assert.False(results["unknown"].Succeeded);
            Assert.Contains("routers for sparsities 0.25, 0.5 only", results["unknown"].ErrorMessage);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [SharedModelsFact]
    public async Task Sequences_wait_for_KV_cache_room_and_one_that_can_never_fit_fails_alone()
    {
        // 100 rows of room per stage: one 70-token line at a time (its caches may take 86 rows); a 124-token line never (153).
        long bytesPerRow;
        using (var checkpoint = Checkpoint.Open(JobLines.Aidreams))
            bytesPerRow = checkpoint.Config.Layers * LayerKvCache.BytesPerRow(checkpoint.Config.KvDim);
        string deployment = $"kv-{Guid.NewGuid():N}";
        await cluster.Client.GetGrain<ICoordinatorGrain>(deployment).Deploy(
            new DeploymentRequest(JobLines.Aidreams, Stages: 1, KvCacheBytesPerStage: 100 * bytesPerRow));
        var job = cluster.Client.GetGrain<IJobGrain>($"job_{Guid.NewGuid():N}");
        await job.Create(new JobSpec(deployment, "kv.jsonl", MaxConcurrent: 8));
        var fitting = JobLines.Make(6, maxTokens: 66);
        var tooLong = JobLines.Make(1, maxTokens: 120)[0] with { Key = "too-long" };
        await job.AddLines([.. fitting, tooLong]);
        await job.Start();
        Assert.Equal(JobStatus.Completed, (await WaitFinal(job)).Status);

        var results = (await JobLines.AllResults(job)).ToDictionary(r => r.Key);
        Assert.All(fitting, line => Assert.True(results[line.Key].Succeeded, results[line.Key].ErrorMessage));
        Assert.False(results["too-long"].Succeeded);
        Assert.Contains("the sequence's 124 tokens need KV-cache room for 153 rows", results["too-long"].ErrorMessage);
        Assert.Contains("more than the deployment's 100", results["too-long"].ErrorMessage);

        // The stage was told each line's length (4 + 66) before its first step: its caches took exactly that room once,
        // inside the 100 rows (doubled room would have taken 128 rows for a line of 65 tokens or more).
        var stage = (await cluster.Client.GetGrain<ICoordinatorGrain>(deployment).Reports()).Single();
        Assert.Equal(70 * bytesPerRow, stage.PeakKvCacheBytes);
    }

    [SharedModelsFact]
    public async Task A_cancelled_job_stops_and_keeps_the_results_it_had()
    {
        string deployment = await Deploy();
        var job = cluster.Client.GetGrain<IJobGrain>($"job_{Guid.NewGuid():N}");
        await job.Create(new JobSpec(deployment, "lines.jsonl", MaxConcurrent: 2));
        await job.AddLines(JobLines.Make(60, maxTokens: 100));
        await job.Start();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while ((await job.Info()).Done < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "no line finished within a minute");
            await Task.Delay(20);
        }

        var cancelled = await job.Cancel();
        Assert.Equal(JobStatus.Cancelled, cancelled.Status);
        Assert.InRange(cancelled.Done, 2, 59);
        var kept = await JobLines.AllResults(job);
        Assert.Equal(cancelled.Done, kept.Length);
        Assert.All(kept, r => Assert.True(r.Succeeded));

        // Nothing of the job runs on after it: its sequences leave within a step and free their caches. (The
        // bound is for a loaded machine; on an idle one they are gone well inside a second.)
        var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>(deployment);
        var stopBy = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while ((await coordinator.Reports()).Any(r => r.SequencesInFlight > 0))
        {
            Assert.True(DateTime.UtcNow < stopBy, "the cancelled job's sequences still hold caches after 10 s");
            await Task.Delay(20);
        }
        Assert.Empty((await coordinator.CollectLines(job.GetPrimaryKeyString(), TimeSpan.Zero)).Results);
        Assert.Equal(JobStatus.Cancelled, (await job.Info()).Status);
    }
}

/// <summary>Deployments come and go: listed with their memory, unloaded on request or when unused.</summary>
public sealed class DeploymentLifecycleTests(ThreeSiloCluster cluster) : IClassFixture<ThreeSiloCluster>
{
    [SharedModelsFact]
    public async Task A_deployment_is_listed_with_its_memory_and_an_unloaded_one_is_gone_and_refuses_work()
    {
        string deployment = $"life-{Guid.NewGuid():N}";
        var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>(deployment);
        await coordinator.Deploy(new DeploymentRequest(JobLines.Aidreams, Stages: 2));
        await coordinator.Generate(new GenerationRequest([1, 300, 301], MaxTokens: 5, StopTokens: []));

        Assert.Contains(deployment, await cluster.Client.GetGrain<IDeploymentListGrain>(0).Ids());
        var info = await coordinator.Describe();
        Assert.NotNull(info);
        Assert.Equal(2, info.Stages.Length);
        Assert.All(info.Stages, s => Assert.True(s.WeightBytes > 0));
        Assert.Equal(0, info.SequencesRunning);

        var planned = await coordinator.Stages();
        await coordinator.Unload();
        Assert.Null(await coordinator.Describe());
        Assert.DoesNotContain(deployment, await cluster.Client.GetGrain<IDeploymentListGrain>(0).Ids());
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => coordinator.Generate(new GenerationRequest([1, 300], MaxTokens: 2, StopTokens: [])));
        Assert.Contains("has not been deployed", refused.Message);
        foreach (var stage in planned)
            await Assert.ThrowsAsync<StageNotLoadedException>(() => cluster.Client.GetGrain<IStageGrain>(stage.GrainKey).Report(DeploymentToken.New()));

        // Deployed again, it works again.
        await coordinator.Deploy(new DeploymentRequest(JobLines.Aidreams, Stages: 2));
        Assert.Equal(4 + 3, (await coordinator.Generate(new GenerationRequest([1, 300, 301], MaxTokens: 4, StopTokens: []))).Ids.Length);
        await coordinator.Unload();
    }

    [SharedModelsFact]
    public async Task An_unused_deployment_is_unloaded_after_its_idle_time()
    {
        string deployment = $"idle-{Guid.NewGuid():N}";
        var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>(deployment);
        await coordinator.Deploy(new DeploymentRequest(JobLines.Aidreams, Stages: 1, IdleUnloadSeconds: 1));
        // The coordinator looks every 15 s; the bound only keeps a broken build from hanging.
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        // Describe answers null from the moment the unload begins; the list forgets it once the stages are freed.
        while (await coordinator.Describe() is not null || (await cluster.Client.GetGrain<IDeploymentListGrain>(0).Ids()).Contains(deployment))
        {
            Assert.True(DateTime.UtcNow < deadline, "the idle deployment is still loaded (or listed) after a minute");
            await Task.Delay(200);
        }
    }
}

/// <summary>
/// With Redis clustering a job and its deployment are kept in Redis: when the silo hosting the job, or the one
/// hosting the deployment's coordinator, dies mid-job, the job goes on elsewhere and every line has one result,
/// the one an uninterrupted run gives.
/// </summary>
public sealed class RedisJobTests
{
    private static readonly string[] NodeNames = ["j1", "j2", "j3"];

    public enum Victim
    {
        JobHost,
        CoordinatorHost,
    }

    [RedisServerAndSharedModelsTheory]
    [InlineData(Victim.JobHost)]
    [InlineData(Victim.CoordinatorHost)]
    public async Task A_job_survives_the_loss_of_a_silo_and_writes_each_line_once(Victim victim)
    {
        using var redis = await RedisServer.StartAsync();
        using (var silos = new RedisSilos(redis, NodeNames))
        {
            await silos.WaitReadyAsync();
            await using var client = await silos.ConnectAsync(redis);
            var grains = client.Grains;
            var retry = new SiloLossRetry(TimeSpan.FromMinutes(3));

            string deployment = $"jobs-{Guid.NewGuid():N}";
            await grains.GetGrain<ICoordinatorGrain>(deployment).Deploy(new DeploymentRequest(JobLines.Aidreams, Stages: 1));
            var lines = JobLines.Make(30, maxTokens: 60);
            var job = grains.GetGrain<IJobGrain>($"job_{Guid.NewGuid():N}");
            await job.Create(new JobSpec(deployment, "lines.jsonl", MaxConcurrent: 2));
            await job.AddLines(lines);
            await job.Start();
            while ((await job.Info()).Done < 3)
            {
                Assert.False(retry.Expired, "no results within the deadline");
                await Task.Delay(20);
            }

            string host = victim == Victim.JobHost
                ? (await job.Info()).Host
                : await grains.GetGrain<ICoordinatorGrain>(deployment).NodeName();
            silos.Kill(host);
            JobInfo info;
            while (!JobStatus.IsFinal((info = await retry.Call(job.Info)).Status))
            {
                Assert.False(retry.Expired, $"job still {info.Status} at {info.Done}/{info.Lines} after {host} died");
                await Task.Delay(200);
            }
            Assert.Equal(JobStatus.Completed, info.Status);
            if (victim == Victim.JobHost) Assert.NotEqual(host, info.Host);
            else Assert.NotEqual(host, await retry.Call(grains.GetGrain<ICoordinatorGrain>(deployment).NodeName));
            var results = await retry.Call(() => JobLines.AllResults(job));
            Assert.Equal(lines.Select(l => l.Key).Order(), results.Select(r => r.Key).Order());
            Assert.True(info.Completed == 30, string.Join("; ", results.Where(r => !r.Succeeded).Select(r => $"{r.Key}: {r.ErrorCode} {r.ErrorMessage}")));

            // The same lines on the survivors, uninterrupted: the same answers.
            var again = grains.GetGrain<IJobGrain>($"job_{Guid.NewGuid():N}");
            await again.Create(new JobSpec(deployment, "lines.jsonl", MaxConcurrent: 4));
            await again.AddLines(lines);
            await again.Start();
            while (!JobStatus.IsFinal((await again.Info()).Status))
            {
                Assert.False(retry.Expired, "the reference job did not finish");
                await Task.Delay(100);
            }
            var expected = (await JobLines.AllResults(again)).ToDictionary(r => r.Key, JobLines.Answer);
            Assert.All(results, r => Assert.Equal(expected[r.Key], JobLines.Answer(r)));
        }
    }

    /// <summary>
    /// The silo holding the job's lines dies just as the job starts elsewhere: the driver's reads fail until the cluster
    /// declares that silo dead, and the job goes on from Redis once it has, rather than failing or stopping silently.
    /// </summary>
    [RedisServerAndSharedModelsFact]
    public async Task A_job_whose_lines_were_on_a_silo_that_died_as_it_started_runs_every_line_once()
    {
        using var redis = await RedisServer.StartAsync();
        using var silos = new RedisSilos(redis, NodeNames);
        await silos.WaitReadyAsync();
        await using var client = await silos.ConnectAsync(redis);
        var grains = client.Grains;
        var retry = new SiloLossRetry(TimeSpan.FromMinutes(3));
        string deployment = $"jobs-{Guid.NewGuid():N}";
        await grains.GetGrain<ICoordinatorGrain>(deployment).Deploy(new DeploymentRequest(JobLines.Aidreams, Stages: 1));
        var lines = JobLines.Make(30, maxTokens: 20);

        // A job whose lines are on another silo than the job itself. A job's pieces go where it is, so its first
        // piece is activated (empty) by the client, which places it apart from the job about two times in three.
        IJobGrain? job = null;
        string? linesHost = null;
        for (int attempt = 0; attempt < 20 && job is null; attempt++)
        {
            string id = $"job_{Guid.NewGuid():N}";
            var firstLines = grains.GetGrain<IJobLinesGrain>($"{id}/lines/0");
            Assert.Empty(await firstLines.Read());
            var candidate = grains.GetGrain<IJobGrain>(id);
            await candidate.Create(new JobSpec(deployment, "lines.jsonl", MaxConcurrent: 2));
            await candidate.AddLines(lines);
            linesHost = NodeOf(silos, await grains.GetGrain<IManagementGrain>(0).GetActivationAddress(firstLines));
            if (linesHost != (await candidate.Info()).Host) job = candidate;
        }
        Assert.NotNull(job);

        silos.Kill(linesHost!);
        await retry.Call(job.Start);
        JobInfo info;
        while (!JobStatus.IsFinal((info = await retry.Call(job.Info)).Status))
        {
            Assert.False(retry.Expired, $"job still {info.Status} at {info.Done}/{info.Lines} after {linesHost}, which held its lines, died");
            await Task.Delay(200);
        }
        var results = await retry.Call(() => JobLines.AllResults(job));
        Assert.True(info.Status == JobStatus.Completed, $"job {info.Status}: {info.Error}");
        Assert.Equal(lines.Select(l => l.Key).Order(), results.Select(r => r.Key).Order());
        Assert.Equal(30, info.Completed);
    }

    private static string? NodeOf(RedisSilos silos, SiloAddress? address) =>
        address is null ? null : silos.NodeNames[Array.FindIndex(silos.Options, o => o.SiloPort == address.Endpoint.Port)];
}
