using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Hub;

/// <summary>
/// Turns a <c>--model</c> argument into a local path: a local path stays as it is; a Hugging Face repo id
/// (<see cref="HubModelId"/>) becomes its snapshot folder in the Hugging Face cache (the named file's path for
/// <c>owner/name:file</c>), downloading what the snapshot lacks.
/// </summary>
/// <remarks>
/// A snapshot that has every file a model needs (config.json and the weights; see <see cref="HubModelFiles"/>) is used as
/// it is, with no request, even for a branch: the cache's ref says which commit <c>main</c> was when it was downloaded,
/// as huggingface_hub's offline mode reads it. Otherwise the revision is resolved afresh (its ref rewritten), and the
/// files the snapshot lacks are downloaded: config.json first, the tokenizer files the repository has, then the weights.
/// </remarks>
public sealed class HubModelResolver(HubSettings settings)
{
    public HubSettings Settings { get; } = settings;

    /// <summary>Resolves with the settings of this process's environment.</summary>
    public static Task<string> ResolveFromEnvironmentAsync(string modelArgument,
        IProgress<(string File, long Done, long Total)>? progress = null, CancellationToken cancellation = default) =>
        HubModelId.TryParse(modelArgument, out var id)
            ? new HubModelResolver(HubSettings.FromEnvironment()).ResolveAsync(id, progress, cancellation)
            : Task.FromResult(modelArgument);

    /// <summary>The local path <paramref name="modelArgument"/> names: itself, or a repo id's files in the cache.</summary>
    public Task<string> ResolveAsync(string modelArgument, IProgress<(string File, long Done, long Total)>? progress = null,
        CancellationToken cancellation = default) =>
        HubModelId.TryParse(modelArgument, out var id) ? ResolveAsync(id, progress, cancellation) : Task.FromResult(modelArgument);

    /// <summary>The snapshot folder of <paramref name="id"/> (or its named file), complete.</summary>
    /// <exception cref="HubException">Offline with files missing, or a download that failed.</exception>
    public async Task<string> ResolveAsync(HubModelId id, IProgress<(string File, long Done, long Total)>? progress = null,
        CancellationToken cancellation = default)
    {
        var cache = new HubCache(Settings.CacheRoot, id);
        string? cachedCommit = id.RevisionIsCommit ? id.Revision : cache.ReadRef(id.Revision);
        IReadOnlyList<string> missing = cachedCommit is null
            ? id.File is null ? [HuggingFaceCheckpoint.ConfigFileName, HubModelFiles.WeightsDescription] : [id.File]
            : HubModelFiles.Missing(cache.SnapshotFolder(cachedCommit), id.File);
        if (cachedCommit is not null && missing.Count == 0)
            return LocalPath(cache, cachedCommit, id);
        if (Settings.Offline)
            throw new HubException($"HF_HUB_OFFLINE is set and the Hugging Face cache lacks files of {id}: {string.Join(", ", missing)} "
                + $"(cache folder {cache.RepoFolder}{(cachedCommit is null ? $", which has no snapshot for revision '{id.Revision}'" : "")}). "
                + "Run once with network access to download them, or pass a local path with --model instead.");

        using var http = new HubHttp(Settings);
        var fetcher = new HubFileFetcher(http, Settings, id, cache, progress);
        string first = id.File ?? HuggingFaceCheckpoint.ConfigFileName;
        // The first file resolves the revision to the commit every other file is then fetched at.
        string commit = await fetcher.FetchAsync(id.Revision, first, cancellation)
            ?? throw new HubException($"{id.RepoId} has no {first} at revision '{id.Revision}' ({fetcher.ResolveUrl(id.Revision, first)} answered 404)"
                + (id.File is null ? $": a model repository in Hugging Face's format has one; for a GGUF repository name its file: {id.RepoId}:FILE.gguf" : ""));
        cache.WriteRef(id.Revision, commit);
        if (id.File is null)
            await FetchModelFilesAsync(fetcher, id, cache.SnapshotFolder(commit), commit, cancellation);
        return LocalPath(cache, commit, id);
    }

    private static async Task FetchModelFilesAsync(HubFileFetcher fetcher, HubModelId id, string snapshot, string commit, CancellationToken cancellation)
    {
        bool Has(string file) => File.Exists(Path.Combine(snapshot, file));
        foreach (string file in HubModelFiles.Optional.Where(f => !Has(f)))
            await fetcher.FetchAsync(commit, file, cancellation);
        if (!Has(HuggingFaceCheckpoint.IndexFileName) && !Has(HuggingFaceCheckpoint.WeightsFileName)
            && await fetcher.FetchAsync(commit, HuggingFaceCheckpoint.WeightsFileName, cancellation) is null
            && await fetcher.FetchAsync(commit, HuggingFaceCheckpoint.IndexFileName, cancellation) is null)
            throw new HubException($"{id.RepoId} at commit {commit} has neither {HuggingFaceCheckpoint.WeightsFileName} nor "
                + $"{HuggingFaceCheckpoint.IndexFileName}: only safetensors weights can be read");
        if (Has(HuggingFaceCheckpoint.IndexFileName))
        {
            foreach (string shard in HubModelFiles.Shards(Path.Combine(snapshot, HuggingFaceCheckpoint.IndexFileName)).Where(s => !Has(s)))
                if (await fetcher.FetchAsync(commit, shard, cancellation) is null)
                    throw new HubException($"{id.RepoId} at commit {commit}: {HuggingFaceCheckpoint.IndexFileName} names the shard {shard}, "
                        + $"which the repository does not have ({fetcher.ResolveUrl(commit, shard)} answered 404)");
        }
    }

    private static string LocalPath(HubCache cache, string commit, HubModelId id) =>
        id.File is null ? cache.SnapshotFolder(commit) : Path.Combine(cache.SnapshotFolder(commit), id.File);
}
