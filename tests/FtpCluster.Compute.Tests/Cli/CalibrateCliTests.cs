using System.Text.Json;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Cli;

/// <summary><c>ftpcluster calibrate</c> and <c>eval --router</c> as a user runs them, with tiny settings.</summary>
public sealed class CalibrateCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-calibrate-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Aidreams => SharedModels.PathTo("aidreams260K", "aidreams260K.bin");
    private static string Stories => SharedModels.PathTo("stories260K", "stories260K.bin");

    /// <summary>Seconds, not minutes: a handful of sequences, a population of 4, a few iterations.</summary>
    private static readonly string[] TinySettings =
        ["--max-sequences", "6", "--population", "4", "--generations", "2", "--tune-generations", "1",
         "--guide-iterations", "20", "--iterations", "3", "--batch", "3"];

    private string Samples(string name, int count, int seed)
    {
        string path = Path.Combine(_dir, name);
        var (code, _, stderr) = CliTests.Run("generate", "--model", Aidreams, "--samples", count.ToString(), "--seed", seed.ToString(),
            "--max-tokens", "50", "--out", path);
        Assert.True(code == 0, stderr);
        return path;
    }

    private string Calibrate(string data, string name, double sparsity, string routing, int seed)
    {
        string path = Path.Combine(_dir, name);
        var (code, _, stderr) = CliTests.Run(["calibrate", "--model", Aidreams, "--data", data, "--sparsity", sparsity.ToString("R"),
            "--routing", routing, "--seed", seed.ToString(), "--out", path, .. TinySettings]);
        Assert.True(code == 0, stderr);
        foreach (var phase in new[] { "redundancy: block 0", "search: generation 2/2", "train: guide warm-up", "train: iteration 3/3", "tune: generation 1/1", $"wrote {path}" })
            Assert.Contains(phase, stderr);
        return path;
    }

    [SharedModelsFact]
    public void Calibration_is_deterministic_by_seed_and_writes_a_loadable_artifact_with_its_metrics()
    {
        string data = Samples("calibration.jsonl", 8, seed: 1);
        string first = Calibrate(data, "a.json", 0.3, "one-pass", seed: 4);
        string again = Calibrate(data, "b.json", 0.3, "one-pass", seed: 4);
        string other = Calibrate(data, "c.json", 0.3, "one-pass", seed: 5);
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(again));
        Assert.NotEqual(File.ReadAllBytes(first), File.ReadAllBytes(other));

        using var checkpoint = Checkpoint.Open(Aidreams);
        var artifact = RouterArtifact.Load(first, checkpoint);
        Assert.Equal(RouterKind.Learned, artifact.Router);
        Assert.Equal(0, artifact.Schedule[0]);                       // one-pass: block 0 is dense
        Assert.Equal(0.3, artifact.Schedule.Mean, 9);
        foreach (var key in new[] { "redundancy.block3.mean_cosine", "redundancy.block3.above_0.8", "static_uniform.kl", "static_searched.kl",
            "learned_trained.kl", "learned_tuned.kl", "learned_tuned.ppl_ratio", "learned_tuned.top1_agreement", "static_tuned.kl" })
            Assert.True(artifact.Metrics.ContainsKey(key), $"missing metric {key}");
        Assert.Equal(6, artifact.Metrics["sequences"]);
        // Each search starts from the schedule before it and keeps its best, so neither makes the score worse.
        Assert.True(artifact.Metrics["static_searched.kl"] <= artifact.Metrics["static_uniform.kl"]);
        Assert.True(artifact.Metrics["learned_tuned.kl"] <= artifact.Metrics["learned_trained.kl"]);
    }

    [SharedModelsFact]
    public void Eval_runs_the_calibrated_router_beside_every_baseline_in_both_routings()
    {
        string calibration = Samples("calibration.jsonl", 8, seed: 1);
        string data = Samples("eval.jsonl", 6, seed: 2);
        string onePass = Calibrate(calibration, "one-pass.json", 0.3, "one-pass", seed: 0);
        string block = Calibrate(calibration, "block.json", 0.4, "block", seed: 0);
        var (code, stdout, stderr) = CliTests.Run("eval", "--model", Aidreams, "--data", data, "--calibration", calibration,
            "--router", $"{onePass},{block}", "--json");
        Assert.True(code == 0, stderr);

        var report = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal([onePass, block], report.GetProperty("routers").EnumerateArray().Select(e => e.GetString()));
        var rows = report.GetProperty("results").EnumerateArray()
            .Select(r => (Method: r.GetProperty("method").GetString()!, Routing: r.GetProperty("routing").GetString()!,
                Target: r.GetProperty("sparsity_target").GetDouble(), Achieved: r.GetProperty("sparsity_achieved").GetDouble(), Row: r))
            .ToArray();
        // Dense, then per method and target (the routers' means), the routed ones in each routing.
        var expected = new List<(string, string, double)> { ("dense", "one-pass", 0) };
        foreach (var method in new[] { "shortgpt", "static", "random", "uniform", "learned" })
            foreach (var target in new[] { 0.3, 0.4 })
                foreach (var routing in method == "shortgpt" ? ["one-pass"] : new[] { "block", "one-pass" })
                    expected.Add((method, routing, target));
        Assert.Equal(expected, rows.Select(r => (r.Method, r.Routing, r.Target)));

        string[] numbers = ["sparsity_achieved", "ppl", "ppl_ratio", "top1_agreement", "kl", "flops_ratio"];
        foreach (var r in rows)
            Assert.All(numbers, key => Assert.Equal(JsonValueKind.Number, r.Row.GetProperty(key).ValueKind));
        // Token routing meets its target up to each sequence's rounding, except that one-pass routing cannot
        // apply a schedule's block 0 (the plan is made after it): the block-calibrated router skips some there.
        using var checkpoint = Checkpoint.Open(Aidreams);
        var blockSchedule = RouterArtifact.Load(block, checkpoint).Schedule;
        Assert.True(blockSchedule[0] > 0, $"the block-calibrated schedule {blockSchedule} skips nothing at block 0");
        foreach (var r in rows.Where(r => r.Method is "static" or "random" or "uniform" or "learned"))
        {
            bool withoutBlock0 = r.Target == 0.4 && r.Routing == "one-pass" && r.Method != "uniform";
            double achieved = withoutBlock0 ? blockSchedule.PerBlock.Skip(1).Sum() / blockSchedule.Blocks : r.Target;
            Assert.InRange(r.Achieved, achieved - 0.02, achieved + 0.02);
        }
        var learned = rows.Single(r => r.Method == "learned" && r.Routing == "one-pass" && r.Target == 0.3).Row;
        Assert.Equal(0, learned.GetProperty("block_sparsity")[0].GetDouble());
        // The baselines run the artifact's schedule: static's block sparsity is the learned router's.
        var statics = rows.Single(r => r.Method == "static" && r.Routing == "one-pass" && r.Target == 0.3).Row;
        Assert.Equal(learned.GetProperty("block_sparsity").GetRawText(), statics.GetProperty("block_sparsity").GetRawText());
    }

    [SharedModelsFact]
    public void A_router_of_another_model_and_bad_options_are_refused_clearly()
    {
        string calibration = Samples("calibration.jsonl", 6, seed: 1);
        string router = Calibrate(calibration, "router.json", 0.3, "one-pass", seed: 0);

        var (code, _, stderr) = CliTests.Run("eval", "--model", Stories, "--data", calibration, "--router", router);
        Assert.Equal(1, code);
        Assert.Contains($"{router}: this router was calibrated for the model with fingerprint", stderr);

        (code, _, stderr) = CliTests.Run("eval", "--model", Aidreams, "--data", calibration, "--methods", "dense,learned");
        Assert.Equal(2, code);
        Assert.Contains("--methods learned runs a calibrated router: pass --router ROUTER.json", stderr);

        (code, _, stderr) = CliTests.Run("eval", "--model", Aidreams, "--data", calibration, "--router", router, "--sparsity", "0.3");
        Assert.Equal(2, code);
        Assert.Contains("--sparsity and --router both set the targets", stderr);

        (code, _, stderr) = CliTests.Run("eval", "--model", Aidreams, "--data", calibration, "--routing", "sideways");
        Assert.Equal(2, code);
        Assert.Contains("--routing: unknown routing 'sideways' (known: block, one-pass)", stderr);

        (code, _, stderr) = CliTests.Run("calibrate", "--model", Aidreams, "--data", calibration, "--sparsity", "1.2", "--out", router);
        Assert.Equal(2, code);
        Assert.Contains("--sparsity expects one mean sparsity in (0, 1), such as 0.3; got '1.2'", stderr);

        (code, _, stderr) = CliTests.Run("calibrate", "--model", Aidreams, "--data", calibration, "--sparsity", "0.3", "--routing", "both", "--out", router);
        Assert.Equal(2, code);
        Assert.Contains("--routing expects one of block, one-pass; got 'both'", stderr);

        (code, _, stderr) = CliTests.Run("calibrate", "--model", Aidreams, "--data", calibration, "--sparsity", "0.3", "--population", "1", "--out", router);
        Assert.Equal(2, code);
        Assert.Contains("a population needs at least 2 schedules, got 1", stderr);
    }
}
