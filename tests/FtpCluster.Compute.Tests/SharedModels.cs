using System.Text.Json;

namespace FtpCluster.Compute.Tests;

/// <summary>
/// The shared test models folder: <c>FTPCLUSTER_SHARED_MODELS</c> when set (scripts/gpu-check.sh runs the tests from
/// a bundle, outside any checkout), else <c>../shared/models</c> next to the repository root (the folder holding
/// FtpCluster.sln, found by walking up from the test assembly). Null when absent, as in a checkout outside CI.
/// </summary>
public static class SharedModels
{
    public const string SolutionFile = "FtpCluster.sln";
    public const string Variable = "FTPCLUSTER_SHARED_MODELS";

    public static string? Root { get; } = Locate();

    public static string MissingMessage =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } given
            ? $"shared test models not found: {Variable} names {given}, which is not a folder"
            : $"shared test models not found: expected ../shared/models beside the folder holding {SolutionFile}";

    /// <summary>A path under <see cref="Root"/>; for tests marked <see cref="SharedModelsFactAttribute"/>.</summary>
    public static string PathTo(params string[] parts) =>
        Path.Combine([Root ?? throw new InvalidOperationException(MissingMessage), .. parts]);

    private static readonly Lazy<JsonDocument> GoldenDocument =
        new(() => JsonDocument.Parse(File.ReadAllText(PathTo("golden.json"))));

    /// <summary>golden.json: reference outputs computed in float64 by an independent implementation.</summary>
    public static JsonElement Golden => GoldenDocument.Value.RootElement;

    private static string? Locate()
    {
        if (Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } given)
            return Directory.Exists(given) ? Path.GetFullPath(given) : null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, SolutionFile)))
                continue;
            string models = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "models"));
            return Directory.Exists(models) ? models : null;
        }
        return null;
    }
}

/// <summary>A fact that is skipped, saying why, when the shared models folder is absent.</summary>
public sealed class SharedModelsFactAttribute : FactAttribute
{
    public SharedModelsFactAttribute()
    {
        if (SharedModels.Root is null)
            Skip = SharedModels.MissingMessage;
    }
}

/// <summary>A theory that is skipped, saying why, when the shared models folder is absent.</summary>
public sealed class SharedModelsTheoryAttribute : TheoryAttribute
{
    public SharedModelsTheoryAttribute()
    {
        if (SharedModels.Root is null)
            Skip = SharedModels.MissingMessage;
    }
}
