using FtpCluster.Grains.Hosting;

namespace FtpCluster.Grains.Files;

[GenerateSerializer]
[Alias("FtpCluster.FileListRecord")]
public sealed class FileListRecord
{
    /// <summary>Oldest first.</summary>
    [Id(0)] public List<StoredFile> Files { get; set; } = [];
}

internal sealed class FileListGrain(
    [PersistentState("files", FtpClusterSiloBuilderExtensions.JobStorage)] IPersistentState<FileListRecord> record)
    : Grain, IFileListGrain
{
    private List<StoredFile> Files => record.State.Files;

    public async Task Add(StoredFile file)
    {
        int index = Files.FindIndex(f => f.Id == file.Id);
        if (index >= 0 && Files[index] == file) return;
        if (index >= 0) Files[index] = file;
        else if (Files.Count >= FileLimits.MaxFiles)
            throw new InvalidOperationException($"the cluster holds {Files.Count} files, its limit: delete some before adding {file.Id}");
        else Files.Add(file);
        await record.WriteStateAsync();
    }

    public async Task Remove(string fileId)
    {
        if (Files.RemoveAll(f => f.Id == fileId) > 0) await record.WriteStateAsync();
    }

    public Task<FilePage> List(string? after, int limit, string? purpose, bool ascending)
    {
        if (limit < 1) throw new ArgumentException($"'limit' must be at least 1, got {limit}");
        IEnumerable<StoredFile> ordered = ascending ? Files : Enumerable.Reverse(Files);
        if (after is not null)
        {
            if (!Files.Exists(f => f.Id == after)) throw new ArgumentException($"'after': there is no file {after} to list after");
            ordered = ordered.SkipWhile(f => f.Id != after).Skip(1);
        }
        if (purpose is not null) ordered = ordered.Where(f => f.Purpose == purpose);
        // One more than asked for says whether more follow.
        var page = ordered.Take(Math.Min(limit, FileLimits.MaxFiles) + 1).ToArray();
        bool hasMore = page.Length > limit;
        return Task.FromResult(new FilePage(hasMore ? page[..limit] : page, hasMore));
    }
}
