using System.Text.Json;

namespace FtpCluster.Compute.Tests;

/// <summary>
/// The test models in ../shared/models beside the repository root. CI lays that folder out; a checkout
/// without it skips the tests that need it, with a message saying so.
/// </summary>
public static class SharedModels
{
    private static readonly Lazy<string?> LazyRoot = new(FindRoot);
    private static readonly Lazy<JsonDocument> LazyGolden = new(() =>
        JsonDocument.Parse(File.ReadAllText(System.IO.Path.Combine(Root!, "golden.json"))));

    /// <summary>The models folder, or null when it is absent.</summary>
    public static string? Root => LazyRoot.Value;

    public static string Path(string relative) =>
        System.IO.Path.Combine(Root ?? throw new InvalidOperationException("../shared/models is absent"), relative);

    public static JsonElement Golden => LazyGolden.Value.RootElement;

    private static string? FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "FtpCluster.sln")))
            {
                string models = System.IO.Path.GetFullPath(System.IO.Path.Combine(dir.FullName, "..", "shared", "models"));
                return File.Exists(System.IO.Path.Combine(models, "golden.json")) ? models : null;
            }
        }
        return null;
    }
}

/// <summary>A fact that is skipped, with a message, when ../shared/models is absent.</summary>
public sealed class SharedModelsFactAttribute : FactAttribute
{
    public SharedModelsFactAttribute()
    {
        if (SharedModels.Root is null)
            Skip = "../shared/models is absent (it sits beside the repository in CI): test models unavailable";
    }
}
