using System.Security.Cryptography;
using System.Text;
using FtpCluster.Compute.Hub;

namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// The id of the deployment of one model file with one stage count, wire encoding, weight type and routers, the same
/// wherever it is made: commands against a running cluster, <c>cluster up --model</c> and a silo's <c>--serve</c> share
/// one deployment instead of loading the model again. Readable, plus a hash of the full path.
/// </summary>
public static class DeploymentIds
{
    /// <param name="wire">The wire encoding's command-line word (f32, f16, ...).</param>
    /// <param name="storage">The weight type's word (f32, f16, bf16); null keeps the file's.</param>
    /// <param name="routers">FTP router artifacts; null when the model runs dense.</param>
    public static string For(string modelPath, int stages, string wire, string? storage,
        IReadOnlyList<string>? routers = null, bool stageAware = false, bool pruneNewest = false)
    {
        string fullPath = Path.GetFullPath(modelPath).TrimEnd(Path.DirectorySeparatorChar);
        // A Hugging Face cache snapshot's folder is named by its commit: the repository's name says more.
        string readable = HubCache.RepoIdOfSnapshot(fullPath)?.Split('/')[1] ?? Path.GetFileNameWithoutExtension(fullPath);
        string name = new([.. readable.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-')]);
        string id = $"{name}-{Hash(fullPath)}-{stages}x-{wire}-{storage ?? "file"}";
        return routers is null ? id : $"{id}-ftp-{Hash($"{string.Join(",", routers)}|{stageAware}|{pruneNewest}")}";
    }

    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..8];
}
