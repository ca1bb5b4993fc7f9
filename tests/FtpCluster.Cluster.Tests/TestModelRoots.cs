using FtpCluster.Compute.Tests;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// The model roots test silos run with: the shared test models and the temporary folder the tests write models, tokenizers
/// and routers into. The tests of the roots themselves give their own.
/// </summary>
public static class TestModelRoots
{
    public static List<string> All => [.. new[] { SharedModels.Root, Path.GetTempPath() }.OfType<string>()];
}
