using System.Diagnostics;
using System.Text.Json;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// <c>ftpcluster generate/score --stages N</c> (an embedded cluster the command starts and stops),
/// <c>--cluster</c> against <c>ftpcluster cluster up</c>, and <c>--wire</c>: every command a separate
/// process, every silo a process of its own, checked by pid to be gone afterwards.
/// </summary>
public sealed class CommandLineClusterTests
{
    private static string Aidreams => SharedModels.PathTo("aidreams260K", "aidreams260K.bin");

    private static string Stories => SharedModels.PathTo("stories260K", "stories260K.bin");

    private static readonly int[] ScoreIds = [1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435];

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    private static long[] Longs(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt64()).ToArray();

    private static int Dim(string model)
    {
        using var checkpoint = Checkpoint.Open(model);
        return checkpoint.Config.Dim;
    }

    private static JsonElement Json((int Code, string Out, string Err) run)
    {
        Assert.True(run.Code == 0, $"exit code {run.Code}:{Environment.NewLine}{run.Err}");
        return JsonDocument.Parse(run.Out).RootElement;
    }

    /// <summary>The silo processes a command reported (its stages' pids) are no longer running.</summary>
    private static void AssertSilosGone(IEnumerable<int> pids)
    {
        foreach (int pid in pids)
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                Assert.True(process.HasExited, $"silo process {pid} still runs");
            }
            catch (ArgumentException)
            {
                // No process has that id: gone.
            }
        }
    }

    private static int[] StagePids(JsonElement json) =>
        json.GetProperty("stages").EnumerateArray().Select(s => s.GetProperty("pid").GetInt32()).ToArray();

    private static long[] ScorePacketBytes(JsonElement json, WireEncoding wire) =>
        [ActivationCodec.EncodedPacketBytes(ScoreIds.Length, Dim(Stories), wire, json.GetProperty("deployment").GetString()!)];

    private static float[][] Logits(JsonElement json) =>
        json.GetProperty("logits").EnumerateArray().Select(row => row.EnumerateArray().Select(e => e.GetSingle()).ToArray()).ToArray();

    [SharedModelsFact]
    public async Task Generate_through_three_embedded_stages_gives_the_golden_ids_and_text_and_reports_the_traffic()
    {
        var golden = SharedModels.Golden.GetProperty("aidreams260K");
        int[] promptIds = Ints(golden.GetProperty("prompt_ids"));
        int[] expectedIds = Ints(golden.GetProperty("greedy_60_steps_ids"));
        int maxTokens = expectedIds.Length - promptIds.Length;

        var json = Json(await CommandLineProcess.RunAsync("generate", "--model", Aidreams, "--prompt", golden.GetProperty("prompt").GetString()!,
            "--max-tokens", maxTokens.ToString(System.Globalization.CultureInfo.InvariantCulture), "--stages", "3", "--json"));

        Assert.Equal(expectedIds, Ints(json.GetProperty("ids")));
        Assert.Equal(golden.GetProperty("greedy_60_steps_text").GetString(), json.GetProperty("text").GetString());
        var stages = json.GetProperty("stages").EnumerateArray().ToArray();
        Assert.Equal(["a", "b", "c"], stages.Select(s => s.GetProperty("silo").GetString()));
        // Contiguous slices [first, end) covering the model's 4 layers, none empty.
        var layers = stages.Select(s => Ints(s.GetProperty("layers"))).ToArray();
        Assert.Equal(0, layers[0][0]);
        Assert.Equal(4, layers[^1][1]);
        for (int i = 0; i < layers.Length; i++)
        {
            Assert.True(layers[i][0] < layers[i][1], $"stage {i} has no layers");
            if (i > 0) Assert.Equal(layers[i - 1][1], layers[i][0]);
        }
        // Two boundaries, each carried the prompt's rows once, then one row per decode step (the last
        // stage sends nothing on, so it has no entry).
        string deployment = json.GetProperty("deployment").GetString()!;
        int dim = Dim(Aidreams);
        long perBoundary = ActivationCodec.EncodedPacketBytes(promptIds.Length, dim, WireEncoding.F32, deployment)
            + (maxTokens - 1) * ActivationCodec.EncodedPacketBytes(1, dim, WireEncoding.F32, deployment);
        Assert.Equal([perBoundary, perBoundary], Longs(json.GetProperty("wire_bytes")));
        AssertSilosGone(StagePids(json));
    }

    /// <summary>
    /// <c>--router</c>: the same pruned greedy generation in this process (one-pass routing) and through three
    /// embedded stages, whose first stage makes the same plan; a prompt's rows that no later block computes
    /// never cross, so the pruned run carries fewer bytes than the dense one.
    /// </summary>
    [SharedModelsFact]
    public async Task Pruned_generation_is_the_same_in_one_process_and_through_three_stages_and_carries_fewer_bytes()
    {
        string dir = Directory.CreateTempSubdirectory("ftp-cli-router-").FullName;
        try
        {
            string router = Path.Combine(dir, "router.json");
            using (var checkpoint = Checkpoint.Open(Aidreams))
                Compute.Ftp.RouterArtifact.From(new Compute.Ftp.StaticRouter(), new Compute.Ftp.SparsitySchedule([0.0, 0.5, 0.5, 0.5]),
                    Compute.Ftp.ModelFingerprint.Of(checkpoint)).Save(router);
            string[] common = ["generate", "--model", Aidreams, "--prompt", "Once upon a time, in a land far away, there lived a dragon who", "--max-tokens", "12", "--json"];

            var local = Json(await CommandLineProcess.RunAsync([.. common, "--router", router]));
            var staged = Json(await CommandLineProcess.RunAsync([.. common, "--router", router, "--stages", "3"]));
            var dense = Json(await CommandLineProcess.RunAsync([.. common, "--stages", "3"]));

            Assert.Equal(Ints(local.GetProperty("ids")), Ints(staged.GetProperty("ids")));
            Assert.True(Longs(staged.GetProperty("wire_bytes")).Sum() < Longs(dense.GetProperty("wire_bytes")).Sum(),
                "pruning should cut the bytes between stages");
            AssertSilosGone([.. StagePids(staged), .. StagePids(dense)]);

            var refused = await CommandLineProcess.RunAsync([.. common, "--router", router, "--stages", "3", "--routing", "block"]);
            Assert.Equal(2, refused.Code);
            Assert.Contains("--routing block runs in one process only", refused.Err);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// <c>eval --stages N --router</c>: the evaluation data also goes through a pipeline, dense f32 and pruned
    /// with the chosen encoding; the router's one-pass rows get the byte ratio, and each stage's compute is
    /// reported beside the plan's share.
    /// </summary>
    [SharedModelsFact]
    public async Task Eval_through_stages_reports_the_wire_bytes_ratio_and_each_stage_against_the_plan()
    {
        string dir = Directory.CreateTempSubdirectory("ftp-cli-eval-stages-").FullName;
        try
        {
            var (data, router) = await EvalInputs(dir, seed: 2);
            var json = Json(await CommandLineProcess.RunAsync("eval", "--model", Aidreams, "--data", data, "--router", router,
                "--methods", "static", "--routing", "one-pass", "--stages", "2", "--wire", "int8", "--json"));

            var measure = Assert.Single(json.GetProperty("cluster").EnumerateArray().ToArray());
            double ratio = measure.GetProperty("wire_bytes_ratio").GetDouble();
            Assert.InRange(ratio, 0.01, 0.5); // int8 alone is under a half of f32 here; pruning takes more off
            Assert.Equal((double)measure.GetProperty("pruned_bytes").GetInt64() / measure.GetProperty("dense_f32_bytes").GetInt64(), ratio, 12);
            var pruned = json.GetProperty("results").EnumerateArray().Single(r => r.GetProperty("method").GetString() == "static");
            Assert.Equal(ratio, pruned.GetProperty("wire_bytes_ratio").GetDouble(), 12);
            var stages = measure.GetProperty("stages").EnumerateArray().ToArray();
            Assert.Equal(2, stages.Length);
            Assert.Equal(1.0, stages.Sum(s => s.GetProperty("planned_share").GetDouble()), 9);
            Assert.Equal(1.0, stages.Sum(s => s.GetProperty("measured_share").GetDouble()), 9);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// <c>eval --stages N --stage-aware</c>: beside each one-pass result, the stage-aware one on the stages
    /// the router was deployed on, which gets the measured byte ratio (the plan the stages ran); the
    /// per-block one-pass result gets none.
    /// </summary>
    [SharedModelsFact]
    public async Task Eval_stage_aware_sets_the_stage_aware_plan_beside_the_per_block_one()
    {
        string dir = Directory.CreateTempSubdirectory("ftp-cli-eval-stage-aware-").FullName;
        try
        {
            var (data, router) = await EvalInputs(dir, seed: 3);
            var json = Json(await CommandLineProcess.RunAsync("eval", "--model", Aidreams, "--data", data, "--router", router,
                "--methods", "static,random", "--routing", "one-pass", "--stages", "2", "--stage-aware", "--json"));

            var measure = Assert.Single(json.GetProperty("cluster").EnumerateArray().ToArray());
            int[][] deployed = [.. measure.GetProperty("stages").EnumerateArray()
                .Select(s => s.GetProperty("layers").EnumerateArray().Select(l => l.GetInt32()).ToArray())];
            Assert.Equal(2, deployed.Length);
            foreach (string method in new[] { "static", "random" })
            {
                var results = json.GetProperty("results").EnumerateArray().Where(r => r.GetProperty("method").GetString() == method).ToArray();
                Assert.Equal(2, results.Length);
                Assert.Equal(JsonValueKind.Null, results[0].GetProperty("stages").ValueKind);
                int[][] segments = [.. results[1].GetProperty("stages").EnumerateArray().Select(s => s.EnumerateArray().Select(l => l.GetInt32()).ToArray())];
                Assert.Equal(deployed, segments);
                // Only the router that ran on the stages has bytes on the wire: the stage-aware static one.
                Assert.Equal(JsonValueKind.Null, results[0].GetProperty("wire_bytes_ratio").ValueKind);
                if (method == "static")
                    Assert.Equal(measure.GetProperty("wire_bytes_ratio").GetDouble(), results[1].GetProperty("wire_bytes_ratio").GetDouble(), 12);
                else
                    Assert.Equal(JsonValueKind.Null, results[1].GetProperty("wire_bytes_ratio").ValueKind);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Three sampled aidreams260K sequences and a static router at 40%, in <paramref name="dir"/>.</summary>
    private static async Task<(string Data, string Router)> EvalInputs(string dir, int seed)
    {
        string data = Path.Combine(dir, "data.jsonl"), router = Path.Combine(dir, "router.json");
        Assert.Equal(0, (await CommandLineProcess.RunAsync("generate", "--model", Aidreams, "--samples", "3", "--out", data,
            "--max-tokens", "60", "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture))).Code);
        Assert.Equal(0, (await CommandLineProcess.RunAsync("router", "static", "--model", Aidreams, "--sparsity", "0.4", "--out", router)).Code);
        return (data, router);
    }

    [SharedModelsFact]
    public async Task Bench_pipeline_measures_both_engines_on_the_same_prompt()
    {
        var json = Json(await CommandLineProcess.RunAsync("bench", "pipeline", "--model", Stories, "--stages", "2",
            "--prompt-tokens", "16", "--reps", "1", "--threads", "1", "--sequences", "3", "--gen-tokens", "2", "--json"));
        Assert.True(json.GetProperty("local_prefill_tokens_per_second").GetDouble() > 0);
        Assert.True(json.GetProperty("decode_tokens_per_second_one_sequence").GetDouble() > 0);
        Assert.True(json.GetProperty("decode_tokens_per_second_many_sequences").GetDouble() > 0);
        Assert.True(json.GetProperty("pipeline_prefill_tokens_per_second").GetDouble() > 0);
        Assert.Equal(2, json.GetProperty("stages").GetArrayLength());
        // Each stage computed during the timed prefills, and no stage's compute exceeds the pipeline's time.
        var stageCompute = json.GetProperty("stage_compute_seconds_per_prefill").EnumerateArray().Select(c => c.GetDouble()).ToArray();
        Assert.Equal(2, stageCompute.Length);
        Assert.All(stageCompute, c => Assert.InRange(c, 1e-9, json.GetProperty("pipeline_prefill_seconds").GetDouble()));
        Assert.Equal(2, json.GetProperty("decode_stage_compute_seconds_per_step").GetArrayLength());
        // One 16-row f32 packet per prefill crosses the one boundary.
        Assert.Equal(ActivationCodec.EncodedPacketBytes(16, 64, WireEncoding.F32, json.GetProperty("deployment_id").GetString()!),
            json.GetProperty("wire_bytes_per_prefill")[0].GetInt64());
    }

    [Fact]
    public async Task Bench_transport_measures_every_boundary_of_an_embedded_cluster()
    {
        var json = Json(await CommandLineProcess.RunAsync("bench", "transport", "--stages", "3", "--sizes", "64KiB",
            "--in-flight", "1,2", "--seconds", "0.1", "--json"));

        var boundaries = json.GetProperty("boundaries").EnumerateArray().ToArray();
        Assert.Equal([("a", "b"), ("b", "c")], boundaries.Select(b => (b.GetProperty("source").GetString(), b.GetProperty("target").GetString())));
        foreach (var boundary in boundaries)
        {
            var results = boundary.GetProperty("results").EnumerateArray().ToArray();
            Assert.Equal([1, 2], results.Select(r => r.GetProperty("in_flight").GetInt32()));
            foreach (var result in results)
            {
                Assert.Equal(64 << 10, result.GetProperty("packet_bytes").GetInt32());
                Assert.True(result.GetProperty("packets").GetInt64() >= result.GetProperty("in_flight").GetInt32());
                Assert.Equal(result.GetProperty("packets").GetInt64() * (64 << 10), result.GetProperty("bytes").GetInt64());
                Assert.True(result.GetProperty("gb_per_second").GetDouble() > 0);
            }
        }
        var loopback = json.GetProperty("loopback_tcp").EnumerateArray().ToArray();
        Assert.Equal([4 << 10, 64 << 10], loopback.Select(l => l.GetProperty("read_bytes").GetInt32()));
        Assert.All(loopback, l => Assert.True(l.GetProperty("gb_per_second").GetDouble() > 0));
    }

    [Theory]
    [InlineData("--stages 1", "a boundary needs two silos: --stages must be at least 2, got 1")]
    [InlineData("--sizes 1MiB,0", "--sizes: '0' is not a size (e.g. 1MiB, 512KiB, 1MB, 4096)")]
    [InlineData("--sizes 1GiB", "--sizes: '1GiB' is not a size (e.g. 1MiB, 512KiB, 1MB, 4096)")]
    [InlineData("--sizes 97MiB", "--sizes: 101711872 bytes is over the largest packet a deployment may send (100663296 bytes)")]
    [InlineData("--in-flight 0", "--in-flight: '0' is not a positive count")]
    [InlineData("--seconds 21", "--seconds must be above 0 and at most 20, got 21")]
    [InlineData("--stages 2 --wire f16", "bench transport sends raw bytes: --wire does not apply")]
    public async Task Bad_bench_transport_options_are_refused_before_any_silo_starts(string options, string message)
    {
        var (code, stdout, stderr) = await CommandLineProcess.RunAsync(["bench", "transport", .. options.Split(' ')]);

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Equal($"ftpcluster: {message}", stderr.TrimEnd('\n'));
    }

    [SharedModelsFact]
    public async Task Score_through_two_embedded_stages_equals_the_single_process_logits()
    {
        string ids = JsonSerializer.Serialize(ScoreIds);
        var single = Json(await CommandLineProcess.RunAsync("score", "--model", Stories, "--ids", ids, "--logits", "--json"));
        var staged = Json(await CommandLineProcess.RunAsync("score", "--model", Stories, "--ids", ids, "--logits", "--json", "--stages", "2"));

        var expected = Logits(single);
        var actual = Logits(staged);
        Assert.Equal(expected.Length, actual.Length);
        for (int t = 0; t < expected.Length; t++)
        {
            double diff = expected[t].Zip(actual[t], (e, a) => (double)(e - a) * (e - a)).Sum();
            double norm = expected[t].Sum(e => (double)e * e);
            Assert.True(Math.Sqrt(diff / norm) <= 1e-6, $"position {t}: relative error {Math.Sqrt(diff / norm):E2}");
        }
        Assert.Equal(single.GetProperty("perplexity").GetDouble(), staged.GetProperty("perplexity").GetDouble(), 1e-6);
        Assert.Equal(ScorePacketBytes(staged, WireEncoding.F32), Longs(staged.GetProperty("wire_bytes")));
        AssertSilosGone(StagePids(staged));
    }

    [SharedModelsFact]
    public async Task Commands_use_a_cluster_started_by_cluster_up_and_int8_shrinks_the_wire_by_the_encodings_ratio()
    {
        string clusterId = $"test-{Guid.NewGuid():N}";
        using var up = CommandLineProcess.Start("cluster", "up", "--silos", "2", "--cluster-id", clusterId, "--model", Stories, "--threads", "1");
        await up.WaitForLineAsync(line => line.StartsWith("up;", StringComparison.Ordinal));
        string gateways = (await up.WaitForLineAsync(line => line.StartsWith("gateways ", StringComparison.Ordinal)))["gateways ".Length..];
        string deployed = (await up.WaitForLineAsync(line => line.StartsWith("deployment ", StringComparison.Ordinal)))["deployment ".Length..];
        int[] siloPids = up.Stdout.Split(Environment.NewLine).Where(l => l.StartsWith("silo ", StringComparison.Ordinal))
            .Select(l => int.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(2, siloPids.Length);

        string ids = JsonSerializer.Serialize(ScoreIds);
        var f32 = Json(await CommandLineProcess.RunAsync("score", "--model", Stories, "--ids", ids, "--json", "--cluster", gateways, "--cluster-id", clusterId));
        var int8 = Json(await CommandLineProcess.RunAsync("score", "--model", Stories, "--ids", ids, "--json", "--cluster", gateways, "--cluster-id", clusterId, "--wire", "int8"));

        // Every silo up (no --stages) and the same options as cluster up's: its deployment, not a new one.
        Assert.Equal(deployed, f32.GetProperty("deployment").GetString());
        Assert.Equal(siloPids, StagePids(f32));
        long[] f32Bytes = Longs(f32.GetProperty("wire_bytes"));
        long[] int8Bytes = Longs(int8.GetProperty("wire_bytes"));
        Assert.Equal(ScorePacketBytes(f32, WireEncoding.F32), f32Bytes);
        Assert.Equal(ScorePacketBytes(int8, WireEncoding.Int8PerBlock32), int8Bytes);
        double expectedRatio = (double)ScorePacketBytes(int8, WireEncoding.Int8PerBlock32)[0] / ScorePacketBytes(f32, WireEncoding.F32)[0];
        Assert.Equal(expectedRatio, (double)int8Bytes[0] / f32Bytes[0], 1e-12);
        Assert.True(expectedRatio < 0.5, $"int8 should carry well under half of f32's bytes, ratio {expectedRatio}");

        await up.TerminateAsync();
        Assert.Equal(0, await up.WaitExitAsync());
        Assert.Contains("stopping", up.Stdout, StringComparison.Ordinal);
        AssertSilosGone(siloPids);
    }

    /// <summary>cluster up --tls into an empty folder makes the certificates; commands need the client's to get in.</summary>
    [Fact]
    public async Task Cluster_up_with_TLS_makes_the_certificates_and_a_command_gets_in_only_with_them()
    {
        string folder = Path.Combine(Directory.CreateTempSubdirectory("ftp-up-tls-").FullName, "tls");
        try
        {
            string clusterId = $"test-{Guid.NewGuid():N}";
            using var up = CommandLineProcess.Start("cluster", "up", "--silos", "2", "--cluster-id", clusterId, "--threads", "1", "--tls", folder);
            await up.WaitForLineAsync(line => line.StartsWith("up;", StringComparison.Ordinal));
            string gateways = (await up.WaitForLineAsync(line => line.StartsWith("gateways ", StringComparison.Ordinal)))["gateways ".Length..];
            Assert.Contains($"tls: made a cluster CA and certificates for a, b and clients in {folder}", up.Stdout, StringComparison.Ordinal);
            Assert.Contains($"--cluster-id {clusterId} --tls {folder}", up.Stdout, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(folder, "b.key")) && File.Exists(Path.Combine(folder, "client.pem")));

            var allowed = await CommandLineProcess.RunAsync("cluster", "deployments", "--cluster", gateways, "--cluster-id", clusterId, "--tls", folder, "--json");
            Assert.True(allowed.Code == 0, allowed.Err);
            Assert.Equal("[]", allowed.Out.Trim());

            var refused = await CommandLineProcess.RunAsync("cluster", "deployments", "--cluster", gateways, "--cluster-id", clusterId);
            Assert.Equal(1, refused.Code);
            Assert.Contains("it requires TLS, and this client has no certificate (give --tls DIR", refused.Err, StringComparison.Ordinal);

            await up.TerminateAsync();
            Assert.Equal(0, await up.WaitExitAsync());
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(folder)!, recursive: true);
        }
    }

    [Fact]
    public async Task Silos_stop_by_themselves_when_the_command_that_started_them_is_killed()
    {
        using var up = CommandLineProcess.Start("cluster", "up", "--silos", "1", "--cluster-id", $"test-{Guid.NewGuid():N}", "--threads", "1");
        string siloLine = await up.WaitForLineAsync(line => line.StartsWith("silo a ", StringComparison.Ordinal));
        using var silo = Process.GetProcessById(int.Parse(siloLine[(siloLine.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));

        up.KillAbruptly();

        await silo.WaitForExitAsync().WaitAsync(CommandLineProcess.Timeout);
    }

    [Theory]
    [InlineData("--stages 0", "--stages must be at least 1, got 0")]
    [InlineData("--stages 2 --wire int4", "--wire expects f32, f16, bf16, int8 (a scale per 32 values) or int8-row (a scale per row), got 'int4'")]
    [InlineData("--cluster notaport", "--cluster expects HOST:PORT[,HOST:PORT...] (gateway endpoints), got 'notaport'")]
    [InlineData("--cluster 127.0.0.1:30000 --device cpu", "--device is a silo's own setting: it cannot be chosen with --cluster")]
    [InlineData("--stages 2 --tls certs", "--tls (and --tls-ca, --tls-cert, --tls-key) need --cluster HOST:PORT: an embedded cluster runs on loopback without TLS")]
    [InlineData("--cluster 127.0.0.1:30000 --tls-cert c.pem", "--tls-ca FILE and --tls-cert FILE go together (with --tls-key FILE unless the certificate is a .pfx or .p12)")]
    public async Task Bad_cluster_options_are_refused_in_one_line_with_exit_code_2(string options, string message)
    {
        // Refused before the model is opened or any silo starts: the model path need not exist.
        var (code, stdout, stderr) = await CommandLineProcess.RunAsync(["score", "--model", "no-such-model.bin", "--ids", "[1,2]", .. options.Split(' ')]);

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Equal($"ftpcluster: {message}", stderr.TrimEnd('\n'));
    }
}
