using System.Text.Json;
using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Compute.Tests.Cli;

/// <summary><c>ftpcluster generate --samples</c> and <c>ftpcluster eval</c> as a user runs them.</summary>
public sealed class EvalCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-eval-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string[] Routings = ["block", "one-pass"];

    private static string Aidreams => SharedModels.PathTo("aidreams260K", "aidreams260K.bin");

    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    private string Samples(string name, int count, int seed, int maxTokens = 60)
    {
        string path = Path.Combine(_dir, name);
        var (code, _, stderr) = Run("generate", "--model", Aidreams, "--samples", count.ToString(), "--seed", seed.ToString(),
            "--max-tokens", maxTokens.ToString(), "--out", path);
        Assert.True(code == 0, stderr);
        Assert.Contains($"wrote {count} samples", stderr);
        return path;
    }

    [SharedModelsFact]
    public void Samples_are_json_lines_of_ids_and_text_reproducible_by_seed_and_disjoint_across_seeds()
    {
        string first = Samples("a.jsonl", 4, seed: 5);
        string again = Samples("b.jsonl", 4, seed: 5);
        string other = Samples("c.jsonl", 4, seed: 6);
        Assert.Equal(File.ReadAllLines(first), File.ReadAllLines(again));
        Assert.Empty(File.ReadAllLines(first).Intersect(File.ReadAllLines(other)));

        var tokenizer = TokenizerLoader.Load(SharedModels.PathTo("aidreams260K", "tok512.bin"), 512);
        var lines = File.ReadAllLines(first);
        Assert.Equal(4, lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            var sample = JsonDocument.Parse(lines[i]).RootElement;
            Assert.Equal(["ids", "text"], sample.EnumerateObject().Select(p => p.Name));
            var ids = sample.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(1, ids[0]);                        // no prompt given: BOS alone
            Assert.InRange(ids.Length, 2, 61);
            Assert.Equal(tokenizer.Decode(ids), sample.GetProperty("text").GetString());

            // Sample i is one ordinary generation at temperature 1 with the sampler seed SampleSeeds.For(seed, i).
            var (code, stdout, stderr) = Run("generate", "--model", Aidreams, "--ids", "[1]", "--temperature", "1",
                "--seed", SampleSeeds.For(5, i).ToString(), "--max-tokens", "60", "--json");
            Assert.True(code == 0, stderr);
            Assert.Equal(ids, JsonDocument.Parse(stdout).RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
        }
    }

    [SharedModelsFact]
    public void Eval_json_follows_the_schema_with_dense_first_and_the_plot_is_a_png()
    {
        string data = Samples("eval.jsonl", 8, seed: 1);
        string calibration = Samples("calibration.jsonl", 8, seed: 2);
        string plot = Path.Combine(_dir, "eval.png");
        var (code, stdout, stderr) = Run("eval", "--model", Aidreams, "--data", data, "--calibration", calibration,
            "--sparsity", "0.25,0.5", "--methods", "dense,shortgpt", "--json", "--plot", plot);
        Assert.True(code == 0, stderr);

        var report = JsonDocument.Parse(stdout).RootElement;
        string[] reportKeys = ["model", "data", "sequences", "continuation_tokens", "results"];
        Assert.All(reportKeys, key => Assert.True(report.TryGetProperty(key, out _), $"missing {key}"));
        Assert.Equal(Aidreams, report.GetProperty("model").GetString());
        Assert.Equal(data, report.GetProperty("data").GetString());
        var sequences = File.ReadAllLines(data).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("ids").GetArrayLength())
            .Where(n => n >= Continuation.MinSequenceLength).ToArray();
        Assert.Equal(sequences.Length, report.GetProperty("sequences").GetInt32());
        Assert.Equal(sequences.Sum(n => n - Continuation.Start(n)), report.GetProperty("continuation_tokens").GetInt64());
        Assert.Equal(0, report.GetProperty("calibration_overlap").GetInt32());

        var results = report.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(["dense", "shortgpt", "shortgpt"], results.Select(r => r.GetProperty("method").GetString()));
        string[] numbers = ["sparsity_target", "sparsity_achieved", "ppl", "ppl_ratio", "top1_agreement", "kl", "flops_ratio"];
        foreach (var r in results)
        {
            Assert.Contains(r.GetProperty("routing").GetString(), Routings);
            Assert.All(numbers, key => Assert.Equal(JsonValueKind.Number, r.GetProperty(key).ValueKind));
            Assert.Equal(JsonValueKind.Null, r.GetProperty("wire_bytes_ratio").ValueKind);
            Assert.Equal(4, r.GetProperty("block_sparsity").GetArrayLength());
        }
        Assert.Equal(1, results[0].GetProperty("ppl_ratio").GetDouble());
        Assert.Equal(0, results[0].GetProperty("kl").GetDouble());
        Assert.Equal([0.25, 0.5], results[1..].Select(r => r.GetProperty("sparsity_target").GetDouble()));
        Assert.Equal([0.25, 0.5], results[1..].Select(r => r.GetProperty("sparsity_achieved").GetDouble()));
        Assert.All(results[1..], r => Assert.True(r.GetProperty("flops_ratio").GetDouble() < 1));

        var png = File.ReadAllBytes(plot);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
    }

    [SharedModelsFact]
    public void Eval_prints_a_table_and_reports_bad_lines_by_file_and_line()
    {
        string data = Path.Combine(_dir, "data.jsonl");
        File.WriteAllLines(data, [.. File.ReadAllLines(Samples("samples.jsonl", 3, seed: 1, maxTokens: 30)).Take(1), "{broken", """{"ids": [1, 600]}"""]);
        File.AppendAllLines(data, File.ReadAllLines(Path.Combine(_dir, "samples.jsonl")).Skip(1));
        var (code, stdout, stderr) = Run("eval", "--model", Aidreams, "--data", data, "--sparsity", "0.5");
        Assert.True(code == 0, stderr);
        Assert.Contains($"data: {data}:2: not valid JSON", stderr);
        Assert.Contains($"data: {data}:3: ids[1] = 600 is outside the vocabulary [0, 512)", stderr);
        Assert.Contains("2 bad lines skipped", stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("method", lines[0]);
        Assert.StartsWith("dense", lines[2]);
        Assert.StartsWith("shortgpt", lines[3]);
        Assert.Contains("3 sequences", lines[^1]);
    }

    [SharedModelsFact]
    public void Eval_reads_plain_text_with_the_tokenizer_beside_the_model()
    {
        string data = Path.Combine(_dir, "dreams.txt");
        File.WriteAllLines(data, ["Echoes of knowledge unfold within me, like whispers of light.", "", "Fragments of meaning drift through the stream of data."]);
        var (code, stdout, stderr) = Run("eval", "--model", Aidreams, "--data", data, "--methods", "dense", "--json");
        Assert.True(code == 0, stderr);
        var report = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(2, report.GetProperty("sequences").GetInt32());
        Assert.Single(report.GetProperty("results").EnumerateArray());
    }

    [SharedModelsFact]
    public void Bad_eval_and_sample_options_are_clear_usage_errors()
    {
        string data = Samples("data.jsonl", 2, seed: 1, maxTokens: 20);
        var (code, _, stderr) = Run("eval", "--model", Aidreams, "--data", data, "--methods", "dense,magic");
        Assert.Equal(2, code);
        Assert.Contains("--methods: unknown method 'magic' (known: dense, shortgpt", stderr);

        (code, _, stderr) = Run("eval", "--model", Aidreams, "--data", data, "--sparsity", "0.2,1.5");
        Assert.Equal(2, code);
        Assert.Contains("--sparsity expects numbers in [0, 1) separated by commas, such as 0.2,0.3,0.4; got '1.5'", stderr);

        (code, _, stderr) = Run("eval", "--model", Aidreams);
        Assert.Equal(2, code);
        Assert.Contains("--data is required", stderr);

        string missing = Path.Combine(_dir, "missing.jsonl");
        (code, _, stderr) = Run("eval", "--model", Aidreams, "--data", missing);
        Assert.Equal(1, code);
        Assert.Contains($"data file not found: {missing}", stderr);

        // stories260K comes without a tokenizer: plain text cannot become ids.
        string text = Path.Combine(_dir, "story.txt");
        File.WriteAllText(text, "Once upon a time.");
        (code, _, stderr) = Run("eval", "--model", SharedModels.PathTo("stories260K", "stories260K.bin"), "--data", text);
        Assert.Equal(2, code);
        Assert.Contains($"{text}: plain text needs a tokenizer to become token ids, and none was given: pass --tokenizer PATH", stderr);

        (code, _, stderr) = Run("generate", "--model", Aidreams, "--samples", "3");
        Assert.Equal(2, code);
        Assert.Contains("--samples needs --out FILE.jsonl", stderr);

        (code, _, stderr) = Run("generate", "--model", Aidreams, "--ids", "[1]", "--out", Path.Combine(_dir, "x.jsonl"));
        Assert.Equal(2, code);
        Assert.Contains("--out goes with --samples N", stderr);

        (code, _, stderr) = Run("generate", "--model", Aidreams, "--samples", "3", "--out", Path.Combine(_dir, "x.jsonl"), "--json");
        Assert.Equal(2, code);
        Assert.Contains("--json does not apply to --samples", stderr);
    }
}
