namespace FtpCluster.Compute.Hub;

/// <summary>
/// One repository's folder in the Hugging Face cache, laid out as huggingface_hub lays it out, so that files either
/// downloads are used by the other: <c>models--{owner}--{name}/refs/{revision}</c> holds the commit a branch or tag
/// resolved to, <c>blobs/{etag}</c> holds each file's bytes once (named by the Hub's ETag: the sha256 of an LFS file,
/// the git blob sha1 of a small one), and <c>snapshots/{commit}/{file}</c> is a relative symbolic link to its blob.
/// Locks live in <c>.locks/models--{owner}--{name}/{etag}.lock</c> under the cache root, as huggingface_hub's do.
/// </summary>
public sealed class HubCache(string cacheRoot, HubModelId id)
{
    private const string FolderPrefix = "models--";
    private const string Separator = "--";

    public string CacheRoot { get; } = cacheRoot;

    /// <summary><c>models--{owner}--{name}</c> under the cache root.</summary>
    public string RepoFolder { get; } = Path.Combine(cacheRoot, FolderName(id));

    public static string FolderName(HubModelId id) => FolderPrefix + id.Owner + Separator + id.Name;

    public string RefPath(string revision) => Path.Combine(RepoFolder, "refs", revision);

    public string SnapshotFolder(string commit) => Path.Combine(RepoFolder, "snapshots", commit);

    public string BlobPath(string etag) => Path.Combine(RepoFolder, "blobs", etag);

    public string LockPath(string etag) => Path.Combine(CacheRoot, ".locks", Path.GetFileName(RepoFolder), etag + ".lock");

    /// <summary>The commit <paramref name="revision"/> last resolved to, or null when the cache has no such ref.</summary>
    public string? ReadRef(string revision)
    {
        string path = RefPath(revision);
        if (!File.Exists(path)) return null;
        string commit = File.ReadAllText(path).Trim();
        return HubModelId.IsCommitHash(commit) ? commit : null;
    }

    /// <summary>Records the commit a branch or tag resolved to (a commit needs no ref), replacing the file atomically.</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit || ReadRef(revision) == commit) return;
        string path = RefPath(revision);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string temporary = TemporaryBeside(path);
        File.WriteAllText(temporary, commit);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>
    /// Links <c>snapshots/{commit}/{file}</c> to <c>blobs/{etag}</c> by a relative path, replacing whatever is there in one
    /// rename, so a reader (or another process linking the same file) never sees it missing.
    /// </summary>
    public void Link(string commit, string file, string etag)
    {
        string link = Path.Combine(SnapshotFolder(commit), file);
        string folder = Path.GetDirectoryName(link)!;
        Directory.CreateDirectory(folder);
        string temporary = TemporaryBeside(link);
        File.CreateSymbolicLink(temporary, Path.GetRelativePath(folder, BlobPath(etag)));
        File.Move(temporary, link, overwrite: true);
    }

    private static string TemporaryBeside(string path) => $"{path}.tmp-{Guid.NewGuid():N}";

    /// <summary>
    /// The repo id (<c>owner/name</c>) whose snapshot folder <paramref name="path"/> is: a folder
    /// <c>models--{owner}--{name}/snapshots/{commit}</c> of some cache. Null for any other path, a file in a snapshot included.
    /// </summary>
    public static string? RepoIdOfSnapshot(string path)
    {
        string folder = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        string? snapshots = Path.GetDirectoryName(folder);
        string? repoFolder = snapshots is null ? null : Path.GetFileName(Path.GetDirectoryName(snapshots));
        if (!HubModelId.IsCommitHash(Path.GetFileName(folder)) || Path.GetFileName(snapshots) != "snapshots"
            || repoFolder is null || !repoFolder.StartsWith(FolderPrefix, StringComparison.Ordinal))
            return null;
        // The Hub forbids "--" inside owners and names, so the one separator left splits them unambiguously.
        string[] parts = repoFolder[FolderPrefix.Length..].Split(Separator);
        return parts.Length == 2 && parts.All(p => p.Length > 0) ? $"{parts[0]}/{parts[1]}" : null;
    }
}
