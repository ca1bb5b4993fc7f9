using FtpCluster.Grains.Hosting;

namespace FtpCluster.Grains.Files;

[GenerateSerializer]
[Alias("FtpCluster.FileRecord")]
public sealed class FileRecord
{
    [Id(0)] public StoredFile? File { get; set; }

    /// <summary>The file was deleted: its id is not made again (its pieces are gone).</summary>
    [Id(1)] public bool Deleted { get; set; }
}

internal sealed class FileGrain(
    [PersistentState("file", FtpClusterSiloBuilderExtensions.JobStorage)] IPersistentState<FileRecord> record)
    : Grain, IFileGrain
{
    private string Id => this.GetPrimaryKeyString();

    public async Task<StoredFile> Commit(string filename, string purpose, long bytes, int chunks, int lines)
    {
        if (record.State.File is { } existing) throw new InvalidOperationException($"file {Id} exists already ({existing.Filename}, {existing.Bytes} bytes): a file is committed once");
        if (record.State.Deleted) throw new InvalidOperationException($"file {Id} was deleted: its id is not used again");
        if (string.IsNullOrWhiteSpace(filename)) throw new ArgumentException($"file {Id}: 'filename' must not be empty");
        if (string.IsNullOrWhiteSpace(purpose)) throw new ArgumentException($"file {Id}: 'purpose' must not be empty");
        if (bytes < 0) throw new ArgumentException($"file {Id}: 'bytes' must not be negative, got {bytes}");
        // A batch's output is bounded by its job (its lines and their max_tokens), not by the limit on what users upload.
        if (bytes > FileLimits.MaxFileBytes && purpose != FileLimits.BatchOutputPurpose)
            throw new ArgumentException($"file {Id}: {bytes} bytes, over the {FileLimits.MaxFileBytes} a file may have");
        long fewestChunks = (bytes + FileLimits.ChunkBytes - 1) / FileLimits.ChunkBytes;
        if (chunks < fewestChunks)
            throw new ArgumentException($"file {Id}: {bytes} bytes cannot be in {chunks} pieces of at most {FileLimits.ChunkBytes} bytes; they take {fewestChunks} or more");
        if (lines < 0) throw new ArgumentException($"file {Id}: 'lines' must not be negative, got {lines}");

        var file = new StoredFile(Id, filename, purpose, bytes, DateTimeOffset.UtcNow, chunks, lines);
        // Listed first: a list that is full refuses the file before it exists.
        await GrainFactory.GetGrain<IFileListGrain>(0).Add(file);
        record.State.File = file;
        await record.WriteStateAsync();
        return file;
    }

    public Task<StoredFile?> Info() => Task.FromResult(record.State.File);

    public async Task<bool> Delete()
    {
        if (record.State.File is not { } file) return false;
        // Gone from the record last: a silo lost half way leaves a file that can be deleted again.
        await Task.WhenAll(Enumerable.Range(0, file.Chunks).Select(n => GrainFactory.GetGrain<IFileChunkGrain>($"{Id}/{n}").Clear()));
        await GrainFactory.GetGrain<IFileListGrain>(0).Remove(Id);
        (record.State.File, record.State.Deleted) = (null, true);
        await record.WriteStateAsync();
        return true;
    }
}
