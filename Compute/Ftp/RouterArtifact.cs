using System.Text.Json;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Ftp;

/// <summary>
/// What calibration produces and evaluation and the cluster load: the schedule, the router and its
/// feature normalization, tied to one model by its <see cref="ModelFingerprint"/>. A JSON file:
/// <code>
/// { "format": "ftpcluster-router", "version": 2, "model_fingerprint": "sha256:…",
///   "schedule": [s_0, s_1, …],
///   "router": { "kind": "learned", "hidden": 64, "parameters": [385 numbers, the layout of RouterMlp.Parameters] }
///          or { "kind": "random", "seed": N } or { "kind": "static" },
///   "normalization": { "features": ["log_relative_position", "score", "rank", "sparsity"], "mean": [4], "std": [4] },
///   "metrics": { "name": number, … } }
/// </code>
/// The normalization is of the learned router's inputs (<see cref="LearnedRouter.Inputs"/>). Version 2: version 1
/// normalized the raw position, so its numbers would be misread now.
/// Every problem reading one is a <see cref="ModelFormatException"/> naming the file.
/// </summary>
public sealed record RouterArtifact
{
    public const string Format = "ftpcluster-router";
    public const int FormatVersion = 2;

    public required string ModelFingerprint { get; init; }
    public required SparsitySchedule Schedule { get; init; }
    public required RouterKind Router { get; init; }

    /// <summary>The learned router's <see cref="RouterMlp.Parameters"/>; null for the other kinds.</summary>
    public float[]? MlpParameters { get; init; }

    /// <summary>The random router's seed; null for the other kinds.</summary>
    public ulong? RandomSeed { get; init; }

    public FeatureNormalization Normalization { get; init; } = FeatureNormalization.Identity;

    /// <summary>Whatever calibration measured (KL, perplexity ratio, achieved sparsity, …): an open set of numbers.</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    /// <summary>An artifact for <paramref name="router"/> as it is now (a learned router's parameters are copied).</summary>
    public static RouterArtifact From(ITokenRouter router, SparsitySchedule schedule, string modelFingerprint,
        IReadOnlyDictionary<string, double>? metrics = null) => router switch
    {
        StaticRouter => new() { ModelFingerprint = modelFingerprint, Schedule = schedule, Router = RouterKind.Static, Metrics = metrics ?? new Dictionary<string, double>() },
        RandomRouter r => new() { ModelFingerprint = modelFingerprint, Schedule = schedule, Router = RouterKind.Random, RandomSeed = r.Seed, Metrics = metrics ?? new Dictionary<string, double>() },
        LearnedRouter l => new()
        {
            ModelFingerprint = modelFingerprint, Schedule = schedule, Router = RouterKind.Learned,
            MlpParameters = [.. l.Mlp.Parameters], Normalization = l.Normalization, Metrics = metrics ?? new Dictionary<string, double>(),
        },
        _ => throw new ArgumentException($"no artifact form for router {router.GetType().Name}"),
    };

    /// <summary>A fresh router as described (a random router starts its sequence of draws again).</summary>
    public ITokenRouter CreateRouter() => Router switch
    {
        RouterKind.Static => new StaticRouter(),
        RouterKind.Random => new RandomRouter(RandomSeed ?? throw new InvalidOperationException("a random router artifact needs a seed")),
        RouterKind.Learned => new LearnedRouter(
            new RouterMlp([.. MlpParameters ?? throw new InvalidOperationException("a learned router artifact needs MLP parameters")]), Normalization),
        _ => throw new InvalidOperationException($"unknown router kind {Router}"),
    };

    public void Save(string path)
    {
        foreach (var (name, value) in Metrics)
            if (!double.IsFinite(value)) throw new ArgumentException($"metric '{name}' is {value}: JSON holds only finite numbers");
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("format", Format);
        json.WriteNumber("version", FormatVersion);
        json.WriteString("model_fingerprint", ModelFingerprint);
        WriteArray(json, "schedule", Schedule.PerBlock);
        json.WriteStartObject("router");
        json.WriteString("kind", KindName(Router));
        if (Router == RouterKind.Learned)
        {
            json.WriteNumber("hidden", RouterMlp.Hidden);
            WriteArray(json, "parameters", MlpParameters ?? throw new InvalidOperationException("a learned router artifact needs MLP parameters"));
        }
        if (Router == RouterKind.Random)
            json.WriteNumber("seed", RandomSeed ?? throw new InvalidOperationException("a random router artifact needs a seed"));
        json.WriteEndObject();
        json.WriteStartObject("normalization");
        json.WriteStartArray("features");
        foreach (var name in LearnedRouter.InputNames) json.WriteStringValue(name);
        json.WriteEndArray();
        WriteArray(json, "mean", Normalization.Mean);
        WriteArray(json, "std", Normalization.Std);
        json.WriteEndObject();
        json.WriteStartObject("metrics");
        foreach (var (name, value) in Metrics) json.WriteNumber(name, value);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>Reads an artifact, checking its form but not which model it belongs to.</summary>
    public static RouterArtifact Load(string path)
    {
        using var document = ModelJson.ReadFile(path, InputFileLimits.RouterArtifactBytes, "router artifact");
        var root = document.RootElement.AsObject(path, "(top level)");
        string format = root.Required(path, "format").AsString(path, "format");
        if (format != Format)
            throw new ModelFormatException(path, null, $"'format' is \"{format}\", expected \"{Format}\": not a router artifact");
        int version = root.Required(path, "version").AsInt(path, "version");
        if (version != FormatVersion)
            throw new ModelFormatException(path, null, $"router artifact version {version} is not supported: this build reads version {FormatVersion}");

        string fingerprint = root.Required(path, "model_fingerprint").AsString(path, "model_fingerprint");
        var schedule = Checked(path, "schedule", () => new SparsitySchedule(ReadNumbers(root.Required(path, "schedule"), path, "schedule")));

        var router = root.Required(path, "router").AsObject(path, "router");
        string kindName = Field(router, path, "router", "kind").AsString(path, "router.kind");
        var kind = Enum.GetValues<RouterKind>().Cast<RouterKind?>().FirstOrDefault(k => KindName(k!.Value) == kindName)
            ?? throw new ModelFormatException(path, null, $"'router.kind' is \"{kindName}\", expected one of {string.Join(", ", Enum.GetValues<RouterKind>().Select(k => $"\"{KindName(k)}\""))}");
        float[]? parameters = null;
        ulong? seed = null;
        if (kind == RouterKind.Learned)
        {
            int hidden = Field(router, path, "router", "hidden").AsInt(path, "router.hidden");
            if (hidden != RouterMlp.Hidden)
                throw new ModelFormatException(path, null, $"'router.hidden' is {hidden}, but this build's router MLP has {RouterMlp.Hidden} hidden units");
            parameters = ReadFloats(router, path, "router", "parameters");
            if (parameters.Length != RouterMlp.ParameterCount)
                throw new ModelFormatException(path, null,
                    $"'router.parameters' holds {parameters.Length} numbers, expected {RouterMlp.ParameterCount} ({RouterMlp.Inputs}→{RouterMlp.Hidden}→1)");
        }
        if (kind == RouterKind.Random)
        {
            var value = Field(router, path, "router", "seed");
            seed = value.ValueKind == JsonValueKind.Number && value.TryGetUInt64(out ulong s)
                ? s : throw new ModelFormatException(path, null, $"'router.seed' must be a non-negative integer, got {value.GetRawText()}");
        }

        var normalization = root.Required(path, "normalization").AsObject(path, "normalization");
        var names = Field(normalization, path, "normalization", "features").AsArray(path, "normalization.features")
            .EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() : e.GetRawText()).ToArray();
        if (!names.SequenceEqual(LearnedRouter.InputNames))
            throw new ModelFormatException(path, null,
                $"'normalization.features' is [{string.Join(", ", names)}], expected [{string.Join(", ", LearnedRouter.InputNames)}]");
        var features = Checked(path, "normalization", () => new FeatureNormalization(
            ReadFloats(normalization, path, "normalization", "mean"),
            ReadFloats(normalization, path, "normalization", "std")));

        var metrics = new Dictionary<string, double>();
        foreach (var metric in root.Required(path, "metrics").AsObject(path, "metrics").EnumerateObject())
            metrics[metric.Name] = metric.Value.AsNumber(path, $"metrics.{metric.Name}");

        return new RouterArtifact
        {
            ModelFingerprint = fingerprint, Schedule = schedule, Router = kind, MlpParameters = parameters, RandomSeed = seed,
            Normalization = features, Metrics = metrics,
        };
    }

    /// <summary>Reads an artifact and checks that it was calibrated for <paramref name="model"/>.</summary>
    public static RouterArtifact Load(string path, ICheckpoint model)
    {
        var artifact = Load(path);
        string fingerprint = Ftp.ModelFingerprint.Of(model);
        if (artifact.ModelFingerprint != fingerprint)
            throw new ModelFormatException(path, null,
                $"this router was calibrated for the model with fingerprint {artifact.ModelFingerprint}, but {model.Source} has fingerprint {fingerprint}: calibrate a router for this model");
        return artifact;
    }

    private static string KindName(RouterKind kind) => kind.ToString().ToLowerInvariant();

    private static void WriteArray(Utf8JsonWriter json, string name, IEnumerable<double> values)
    {
        json.WriteStartArray(name);
        foreach (double v in values) json.WriteNumberValue(v);
        json.WriteEndArray();
    }

    /// <summary>Floats are written in their shortest round-trip form, so they read back bit for bit.</summary>
    private static void WriteArray(Utf8JsonWriter json, string name, IEnumerable<float> values)
    {
        json.WriteStartArray(name);
        foreach (float v in values) json.WriteNumberValue(v);
        json.WriteEndArray();
    }

    /// <summary>The value of <paramref name="key"/> inside the object <paramref name="parent"/>; messages name it "parent.key".</summary>
    private static JsonElement Field(JsonElement parent, string path, string parentName, string key) =>
        parent.Optional(key) ?? throw new ModelFormatException(path, null, $"missing required key '{parentName}.{key}'");

    private static double[] ReadNumbers(JsonElement array, string path, string name) =>
        array.AsArray(path, name).EnumerateArray().Select((e, i) => e.AsNumber(path, $"{name}[{i}]")).ToArray();

    /// <summary>An array of numbers that float32 holds (finite after conversion).</summary>
    private static float[] ReadFloats(JsonElement parent, string path, string parentName, string key)
    {
        string name = $"{parentName}.{key}";
        var values = ReadNumbers(Field(parent, path, parentName, key), path, name);
        var floats = new float[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            floats[i] = (float)values[i];
            if (!float.IsFinite(floats[i]))
                throw new ModelFormatException(path, null, $"'{name}[{i}]' is {values[i]}, beyond float32's range");
        }
        return floats;
    }

    /// <summary>A value's own validation (an <see cref="ArgumentException"/>) reported against the file and key.</summary>
    private static T Checked<T>(string path, string key, Func<T> make)
    {
        try
        {
            return make();
        }
        catch (ArgumentException e)
        {
            throw new ModelFormatException(path, null, $"'{key}': {e.Message}", e);
        }
    }
}
