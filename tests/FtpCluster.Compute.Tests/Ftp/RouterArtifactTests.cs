using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Ftp;

public sealed partial class RouterArtifactTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ftpcluster-router-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static RouterArtifact Learned(string fingerprint = "sha256:test") => RouterArtifact.From(
        new LearnedRouter(RouterMlp.Initial(17), new FeatureNormalization([40.5f, 0.0123f, 0.5f, 0.31f], [30.25f, 0.02f, 0.29f, 0.11f])),
        new SparsitySchedule([0.0, 0.35, 0.45, 0.3]), fingerprint,
        new Dictionary<string, double> { ["kl"] = 0.0123, ["ppl_ratio"] = 1.07, ["steps"] = 300 });

    [Fact]
    public void Learned_router_round_trips_bit_for_bit()
    {
        var artifact = Learned();
        string path = Path.Combine(_folder, "router.json");
        artifact.Save(path);
        var loaded = RouterArtifact.Load(path);
        Assert.Equal(artifact.ModelFingerprint, loaded.ModelFingerprint);
        Assert.Equal(RouterKind.Learned, loaded.Router);
        Assert.Equal(artifact.Schedule.PerBlock, loaded.Schedule.PerBlock);
        Assert.Equal(artifact.MlpParameters, loaded.MlpParameters);
        Assert.Equal(artifact.Normalization.Mean, loaded.Normalization.Mean);
        Assert.Equal(artifact.Normalization.Std, loaded.Normalization.Std);
        Assert.Equal(artifact.Metrics, loaded.Metrics);

        // The loaded router scores tokens exactly as the saved one.
        RouterFeatures[] tokens = [new(0, 0.4f, 0.9f, 0.35f), new(17, 0.01f, 0.2f, 0.35f), new(60, 0.05f, 0.6f, 0.45f)];
        var before = new float[3];
        var after = new float[3];
        artifact.CreateRouter().Prioritize(tokens, before);
        loaded.CreateRouter().Prioritize(tokens, after);
        Assert.Equal(before, after);
    }

    [Fact]
    public void Static_and_random_routers_round_trip()
    {
        var schedule = SparsitySchedule.Uniform(0.3, 5);
        string path = Path.Combine(_folder, "static.json");
        RouterArtifact.From(new StaticRouter(), schedule, "sha256:x").Save(path);
        Assert.IsType<StaticRouter>(RouterArtifact.Load(path).CreateRouter());

        path = Path.Combine(_folder, "random.json");
        RouterArtifact.From(new RandomRouter(ulong.MaxValue - 3), schedule, "sha256:x").Save(path);
        var random = Assert.IsType<RandomRouter>(RouterArtifact.Load(path).CreateRouter());
        Assert.Equal(ulong.MaxValue - 3, random.Seed);
        var tokens = new RouterFeatures[8];
        float[] expected = new float[8], actual = new float[8];
        new RandomRouter(ulong.MaxValue - 3).Prioritize(tokens, expected);
        random.Prioritize(tokens, actual);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void A_metric_json_cannot_hold_is_refused_on_save()
    {
        var artifact = Learned() with { Metrics = new Dictionary<string, double> { ["kl"] = double.NaN } };
        var error = Assert.Throws<ArgumentException>(() => artifact.Save(Path.Combine(_folder, "nan.json")));
        Assert.Contains("metric 'kl' is NaN", error.Message);
    }

    [GeneratedRegex("^sha256:[0-9a-f]{64}$")]
    private static partial Regex FingerprintForm();

    [SharedModelsFact]
    public void Fingerprint_is_stable_and_tells_models_apart()
    {
        using var stories = Checkpoint.Open(SharedModels.PathTo("stories260K/stories260K.bin"));
        using var again = Checkpoint.Open(SharedModels.PathTo("stories260K/stories260K.bin"));
        using var aidreams = Checkpoint.Open(SharedModels.PathTo("aidreams260K/aidreams260K.bin"));
        string fingerprint = ModelFingerprint.Of(stories);
        Assert.Matches(FingerprintForm(), fingerprint);
        Assert.Equal(fingerprint, ModelFingerprint.Of(again));
        Assert.NotEqual(fingerprint, ModelFingerprint.Of(aidreams));
    }

    [SharedModelsFact]
    public void Fingerprint_changes_with_a_sampled_weight()
    {
        string copy = Path.Combine(_folder, "changed.bin");
        File.Copy(SharedModels.PathTo("stories260K/stories260K.bin"), copy);
        string before;
        using (var checkpoint = Checkpoint.Open(copy)) before = ModelFingerprint.Of(checkpoint);
        // The first float after the 7-int header is the embedding's first element, the start of its first sample.
        using (var file = File.OpenWrite(copy))
        {
            file.Position = 7 * sizeof(int);
            file.Write(BitConverter.GetBytes(123.5f));
        }
        using (var checkpoint = Checkpoint.Open(copy)) Assert.NotEqual(before, ModelFingerprint.Of(checkpoint));
    }

    [SharedModelsFact]
    public void Loading_against_another_model_names_both_fingerprints_and_the_file()
    {
        using var stories = Checkpoint.Open(SharedModels.PathTo("stories260K/stories260K.bin"));
        using var aidreams = Checkpoint.Open(SharedModels.PathTo("aidreams260K/aidreams260K.bin"));
        string path = Path.Combine(_folder, "stories-router.json");
        string storiesFingerprint = ModelFingerprint.Of(stories);
        RouterArtifact.From(new StaticRouter(), SparsitySchedule.Uniform(0.3, 5), storiesFingerprint).Save(path);

        Assert.Equal(storiesFingerprint, RouterArtifact.Load(path, stories).ModelFingerprint);
        var error = Assert.Throws<ModelFormatException>(() => RouterArtifact.Load(path, aidreams));
        Assert.StartsWith(path + ": ", error.Message);
        Assert.Contains(storiesFingerprint, error.Message);
        Assert.Contains(ModelFingerprint.Of(aidreams), error.Message);
        Assert.Contains(aidreams.Source, error.Message);
    }

    [Theory]
    [InlineData("not json", "is not valid JSON at line 1")]
    [InlineData("format", "'format' is \"other\", expected \"ftpcluster-router\"")]
    [InlineData("version", "router artifact version 1 is not supported: this build reads version 2")]
    [InlineData("no schedule", "missing required key 'schedule'")]
    [InlineData("schedule value", "'schedule': block 1: sparsity 1.5 is outside [0, 1)")]
    [InlineData("schedule text", "'schedule[0]' must be a number, got \"0.1\"")]
    [InlineData("kind", "'router.kind' is \"mlp\", expected one of \"static\", \"random\", \"learned\"")]
    [InlineData("no parameters", "missing required key 'router.parameters'")]
    [InlineData("parameter count", "'router.parameters' holds 3 numbers, expected 385 (4→64→1)")]
    [InlineData("hidden", "'router.hidden' is 32, but this build's router MLP has 64 hidden units")]
    [InlineData("std", "'normalization': score: std 0 must be positive and finite")]
    [InlineData("feature names", "'normalization.features' is [position, score, rank, sparsity], expected [log_relative_position, score, rank, sparsity]")]
    [InlineData("metric", "'metrics.kl' must be a number, got \"low\"")]
    public void Malformed_files_name_the_file_and_what_was_expected(string fault, string message)
    {
        string path = Path.Combine(_folder, "bad.json");
        Learned().Save(path);
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        switch (fault)
        {
            case "format": json["format"] = "other"; break;
            case "version": json["version"] = 1; break;
            case "no schedule": json.Remove("schedule"); break;
            case "schedule value": json["schedule"] = new JsonArray(0.1, 1.5); break;
            case "schedule text": json["schedule"] = new JsonArray("0.1"); break;
            case "kind": json["router"]!["kind"] = "mlp"; break;
            case "no parameters": json["router"]!.AsObject().Remove("parameters"); break;
            case "parameter count": json["router"]!["parameters"] = new JsonArray(1, 2, 3); break;
            case "hidden": json["router"]!["hidden"] = 32; break;
            case "std": json["normalization"]!["std"] = new JsonArray(1, 0, 1, 1); break;
            case "feature names": json["normalization"]!["features"] = new JsonArray("position", "score", "rank", "sparsity"); break;
            case "metric": json["metrics"]!["kl"] = "low"; break;
        }
        File.WriteAllText(path, fault == "not json" ? "{ not json" : json.ToJsonString());
        var error = Assert.Throws<ModelFormatException>(() => RouterArtifact.Load(path));
        Assert.StartsWith(path + ": ", error.Message);
        Assert.Contains(message, error.Message);
    }
}
