namespace FtpCluster.Grains.Files;

/// <summary>
/// One stored file (key: its id, <c>file-…</c>): what it is, and its content in pieces of at most
/// <see cref="FileLimits.ChunkBytes"/> kept by <see cref="IFileChunkGrain"/>s, where the cluster keeps state, so any
/// silo serves it and it outlives the silo that took it in.
/// </summary>
[Alias("FtpCluster.IFileGrain")]
public interface IFileGrain : IGrainWithStringKey
{
    /// <summary>
    /// Makes the file from pieces already written to its chunk grains (<c>ID/0</c> … <c>ID/chunks-1</c>) and adds it to
    /// the <see cref="IFileListGrain"/>. Committing a committed file is refused.
    /// </summary>
    [Alias("Commit")]
    Task<StoredFile> Commit(string filename, string purpose, long bytes, int chunks, int lines);

    /// <summary>The file; null when there is none (never committed, or deleted).</summary>
    [Alias("Info")]
    Task<StoredFile?> Info();

    /// <summary>Deletes the file and its pieces; false when there was none.</summary>
    [Alias("Delete")]
    Task<bool> Delete();
}

/// <summary>One piece of a file's content (key <c>FILE_ID/N</c>, N from 0).</summary>
[Alias("FtpCluster.IFileChunkGrain")]
public interface IFileChunkGrain : IGrainWithStringKey
{
    [Alias("Write")]
    Task Write(byte[] bytes);

    /// <summary>The piece's bytes; empty when it was never written or was cleared.</summary>
    [Alias("Read")]
    Task<byte[]> Read();

    [Alias("Clear")]
    Task Clear();
}

/// <summary>The cluster's files, oldest first (one grain, key 0), for <c>GET /v1/files</c>.</summary>
[Alias("FtpCluster.IFileListGrain")]
public interface IFileListGrain : IGrainWithIntegerKey
{
    /// <summary>Refused past <see cref="FileLimits.MaxFiles"/> files.</summary>
    [Alias("Add")]
    Task Add(StoredFile file);

    [Alias("Remove")]
    Task Remove(string fileId);

    /// <summary>
    /// A page of files, newest first (or oldest first when <paramref name="ascending"/>): those after the file
    /// <paramref name="after"/> in that order (from the start when null), of <paramref name="purpose"/> when not null,
    /// at most <paramref name="limit"/>; and whether more follow.
    /// </summary>
    [Alias("List")]
    Task<FilePage> List(string? after, int limit, string? purpose, bool ascending);
}

/// <summary>A file as OpenAI's file object describes it.</summary>
/// <param name="Purpose"><c>batch</c> for input files, <c>batch_output</c> for the files a batch writes.</param>
/// <param name="Chunks">How many pieces hold its content.</param>
/// <param name="Lines">Lines in the content (a batch input file's requests); 0 when not counted.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.StoredFile")]
public sealed record StoredFile(
    [property: Id(0)] string Id,
    [property: Id(1)] string Filename,
    [property: Id(2)] string Purpose,
    [property: Id(3)] long Bytes,
    [property: Id(4)] DateTimeOffset CreatedAt,
    [property: Id(5)] int Chunks,
    [property: Id(6)] int Lines);

[GenerateSerializer, Immutable]
[Alias("FtpCluster.FilePage")]
public sealed record FilePage(
    [property: Id(0)] StoredFile[] Files,
    [property: Id(1)] bool HasMore);

/// <summary>The bounds on stored files; past each, a refusal.</summary>
public static class FileLimits
{
    /// <summary>Bytes per file, as OpenAI's batch input files.</summary>
    public const long MaxFileBytes = 200_000_000;

    /// <summary>Requests per batch input file, as OpenAI's.</summary>
    public const int MaxBatchLines = 50_000;

    /// <summary>Bytes one stored piece holds at most: far under Orleans' message limit.</summary>
    public const int ChunkBytes = 4 << 20;

    /// <summary>Files the cluster keeps at once; past it, uploads are refused until some are deleted.</summary>
    public const int MaxFiles = 10_000;

    public const string BatchPurpose = "batch";
    public const string BatchOutputPurpose = "batch_output";

    /// <summary>Id of a new file: OpenAI's form, <c>file-</c> and 24 hex digits.</summary>
    public static string NewFileId() => "file-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));
}
