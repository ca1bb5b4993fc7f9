using System.Net;
using System.Security.Cryptography;

namespace FtpCluster.Compute.Hub;

/// <summary>
/// Brings one file of a repository into the cache as huggingface_hub does: asks the Hub for the file's commit, ETag and
/// size (HEAD on its resolve URL, stopping at the Hub's own answer before any CDN redirect), downloads the blob unless the
/// cache has it (to <c>blobs/{etag}.incomplete</c>, resuming one left by an interrupted download with a Range request),
/// checks a sha256 ETag against the bytes, renames the blob into place and links it from the commit's snapshot.
/// </summary>
internal sealed class HubFileFetcher(HubHttp http, HubSettings settings, HubModelId id, HubCache cache,
    IProgress<(string File, long Done, long Total)>? progress)
{
    private const int BufferBytes = 1 << 16;
    private static readonly TimeSpan LockPoll = TimeSpan.FromMilliseconds(200);

    /// <summary>The file's commit and where the Hub said to download it; null when the repository has no such file.</summary>
    private sealed record FileMetadata(string Commit, string ETag, long? Size, Uri DownloadUrl);

    /// <summary>
    /// Puts <paramref name="file"/> at <paramref name="revision"/> into the cache and returns the commit it belongs to;
    /// null when the Hub answers that the repository has no such file (404).
    /// </summary>
    public async Task<string?> FetchAsync(string revision, string file, CancellationToken cancellation)
    {
        string what = $"{file} of {id.RepoId}";
        var metadata = await ReadMetadataAsync(revision, file, what, cancellation);
        if (metadata is null) return null;
        string blob = cache.BlobPath(metadata.ETag);
        if (!File.Exists(blob))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
            using var held = await LockAsync(cache.LockPath(metadata.ETag), cancellation);
            // Another process may have finished this blob while we waited for its lock.
            if (!File.Exists(blob))
                await DownloadAsync(metadata, file, what, blob, cancellation);
        }
        cache.Link(metadata.Commit, file, metadata.ETag);
        return metadata.Commit;
    }

    public Uri ResolveUrl(string revision, string file) =>
        new($"{settings.Endpoint.AbsoluteUri.TrimEnd('/')}/{id.RepoId}/resolve/{Uri.EscapeDataString(revision)}/"
            + string.Join('/', file.Split('/').Select(Uri.EscapeDataString)));

    private async Task<FileMetadata?> ReadMetadataAsync(string revision, string file, string what, CancellationToken cancellation)
    {
        // The Hub's answer for an LFS file is a redirect to its CDN that carries the file's headers; the CDN's has none.
        var (response, url) = await http.SendAsync(HttpMethod.Head, ResolveUrl(revision, file), rangeFrom: null,
            stopAt: r => r.Headers.Contains(LinkedETagHeader) || r.Headers.Contains(CommitHeader), what, cancellation);
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.NotFound && Header(response, ErrorCodeHeader) is null or "EntryNotFound")
                return null;
            if (!response.IsSuccessStatusCode && (int)response.StatusCode is < 300 or > 399)
                throw StatusError(response, what, url, revision);
            string commit = Header(response, CommitHeader)
                ?? throw new HubException($"fetching {what} from {url}: the answer does not say which commit it is ({CommitHeader} header missing)");
            if (!HubModelId.IsCommitHash(commit))
                throw new HubException($"fetching {what} from {url}: {CommitHeader} '{commit}' is not a 40-hex commit hash");
            string etag = NormalizeETag(Header(response, LinkedETagHeader) ?? Header(response, "ETag"))
                ?? throw new HubException($"fetching {what} from {url}: the answer has no ETag, which names the file's blob in the cache");
            long? size = long.TryParse(Header(response, LinkedSizeHeader), out long linked) ? linked : response.Content.Headers.ContentLength;
            var downloadUrl = response.Headers.Location is { } location ? new Uri(url, location) : url;
            return new FileMetadata(commit, etag, size, downloadUrl);
        }
    }

    private async Task DownloadAsync(FileMetadata metadata, string file, string what, string blob, CancellationToken cancellation)
    {
        string partial = blob + ".incomplete";
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        var (response, url) = await GetAsync(metadata.DownloadUrl, have, what, cancellation);
        if (have > 0 && response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            // The partial file is not a prefix the server can continue (it may even be whole but unverified): start again.
            response.Dispose();
            have = 0;
            (response, url) = await GetAsync(metadata.DownloadUrl, have, what, cancellation);
        }
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.PartialContent && have > 0 && response.Content.Headers.ContentRange?.From != have)
                throw new HubException($"fetching {what} from {url}: asked for the bytes from {have} on, got range {response.Content.Headers.ContentRange}");
            if (response.StatusCode != HttpStatusCode.PartialContent)
            {
                if (response.StatusCode != HttpStatusCode.OK)
                    throw StatusError(response, what, url, metadata.Commit);
                have = 0; // the server sends the whole file: whatever was there is replaced
            }
            long total = metadata.Size ?? (response.Content.Headers.ContentLength is { } length ? have + length : -1);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (var output = new FileStream(partial, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, BufferBytes, useAsync: true))
            {
                output.SetLength(have);
                await HashPrefixAsync(output, have, hash, cancellation);
                await using var body = await response.Content.ReadAsStreamAsync(cancellation);
                var buffer = new byte[BufferBytes];
                long done = have;
                progress?.Report((file, done, total));
                while (await http.ReadAsync(body, buffer, what, url, cancellation) is var read and > 0)
                {
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellation);
                    hash.AppendData(buffer, 0, read);
                    done += read;
                    progress?.Report((file, done, total));
                }
                if (metadata.Size is { } size && done != size)
                {
                    if (done > size) output.SetLength(0);
                    throw new HubException($"fetching {what} from {url}: got {done} bytes, expected {size}"
                        + (done < size ? " (run again to resume)" : ""));
                }
            }
            string got = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (IsSha256(metadata.ETag) && got != metadata.ETag)
            {
                File.Delete(partial);
                throw new HubException($"{what}: the download from {url} does not match its checksum: expected sha256 {metadata.ETag}, "
                    + $"got {got}; the partial file was deleted");
            }
        }
        File.Move(partial, blob, overwrite: true);
    }

    private Task<(HttpResponseMessage, Uri)> GetAsync(Uri url, long have, string what, CancellationToken cancellation) =>
        http.SendAsync(HttpMethod.Get, url, have > 0 ? have : null, stopAt: _ => false, what, cancellation);

    /// <summary>Feeds the bytes already downloaded to the checksum, leaving the stream at their end.</summary>
    private static async Task HashPrefixAsync(FileStream stream, long length, IncrementalHash hash, CancellationToken cancellation)
    {
        stream.Position = 0;
        var buffer = new byte[BufferBytes];
        long left = length;
        while (left > 0)
        {
            int read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), cancellation);
            if (read == 0) throw new IOException($"{stream.Name}: ended at {length - left} bytes while reading {length}");
            hash.AppendData(buffer, 0, read);
            left -= read;
        }
        stream.Position = length;
    }

    /// <summary>
    /// Holds the blob's lock file open exclusively (an advisory lock on Unix, as Python's filelock takes), waiting while
    /// another process holds it.
    /// </summary>
    private static async Task<FileStream> LockAsync(string path, CancellationToken cancellation)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                await Task.Delay(LockPoll, cancellation);
            }
        }
    }

    private HubException StatusError(HttpResponseMessage response, string what, Uri url, string revision)
    {
        string detail = Header(response, ErrorMessageHeader) is { } message ? $" ({message})" : "";
        string hint = response.StatusCode switch
        {
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => settings.Token is null
                ? $": {id.RepoId} does not exist, or is private or gated; for one you may read, set HF_TOKEN"
                : $": {id.RepoId} does not exist, or HF_TOKEN gives no access to it",
            HttpStatusCode.NotFound => $": {id.RepoId} or its revision '{revision}' does not exist",
            _ => "",
        };
        return new HubException($"fetching {what}: {url} answered {(int)response.StatusCode} {response.ReasonPhrase}{detail}{hint}");
    }

    // Read without validation: an ETag the Hub sends unquoted is still the blob's name.
    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.NonValidated.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    /// <summary>An ETag as the cache names blobs by it: without a weak marker or quotes.</summary>
    private static string? NormalizeETag(string? etag)
    {
        if (etag is null) return null;
        string bare = etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag;
        bare = bare.Trim('"');
        // It becomes a file name: anything that could leave the blobs folder is not an ETag the Hub sends.
        return bare.Length == 0 || bare.Contains('/') || bare.Contains('\\') || bare is "." or ".." ? null : bare;
    }

    private static bool IsSha256(string etag) => etag.Length == 64 && etag.All(char.IsAsciiHexDigitLower);

    private const string CommitHeader = "X-Repo-Commit";
    private const string LinkedETagHeader = "X-Linked-Etag";
    private const string LinkedSizeHeader = "X-Linked-Size";
    private const string ErrorCodeHeader = "X-Error-Code";
    private const string ErrorMessageHeader = "X-Error-Message";
}
