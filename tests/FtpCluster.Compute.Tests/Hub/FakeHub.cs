using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace FtpCluster.Compute.Tests.Hub;

/// <summary>One request the fake Hub received.</summary>
internal sealed record HubRequest(string Method, string Path, string? Range, string? Authorization);

/// <summary>
/// A Hugging Face Hub on loopback serving one repository at one commit, answering as the Hub does: resolve URLs with
/// X-Repo-Commit and ETag (a small file's git blob sha1), and for LFS files a 302 to a "CDN" path with X-Linked-Etag
/// (the sha256) and X-Linked-Size; the CDN honours <c>Range: bytes=N-</c> with 206. It records every request and can be
/// told to cut a file's next response short, to send wrong bytes, to stall, or to ignore Range.
/// </summary>
internal sealed class FakeHub : IDisposable
{
    public const string Owner = "test-org";
    public const string Name = "tiny-model";
    public const string RepoId = Owner + "/" + Name;
    public const string Commit = "0123456789abcdef0123456789abcdef01234567";

    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<string, byte[]> _files;
    private readonly HashSet<string> _lfs;
    private readonly ConcurrentDictionary<string, int> _cutAfter = new();
    private readonly ConcurrentDictionary<string, int> _stallAfter = new();
    private readonly ConcurrentDictionary<string, bool> _corrupt = new();
    private readonly ConcurrentQueue<HubRequest> _requests = new();

    /// <param name="files">The repository's files by name.</param>
    /// <param name="lfs">The files stored in LFS (served through the CDN redirect).</param>
    public FakeHub(IReadOnlyDictionary<string, byte[]> files, IEnumerable<string> lfs)
    {
        _files = new Dictionary<string, byte[]>(files);
        _lfs = [.. lfs];
        int port = FreePort();
        Endpoint = new Uri($"http://127.0.0.1:{port}/");
        _listener.Prefixes.Add(Endpoint.AbsoluteUri);
        _listener.Start();
        _ = Task.Run(ServeAsync);
    }

    public Uri Endpoint { get; }

    /// <summary>The CDN redirect's Location as an absolute URL instead of a path.</summary>
    public bool AbsoluteRedirects { get; set; }

    /// <summary>The CDN answers a Range request with the whole file (200), as a server without range support does.</summary>
    public bool IgnoreRange { get; set; }

    /// <summary>The 401 the Hub gives for a repository it does not show, on every resolve request.</summary>
    public bool Unauthorized { get; set; }

    public IReadOnlyList<HubRequest> Requests => [.. _requests];

    public void ClearRequests() => _requests.Clear();

    /// <summary>The next download of <paramref name="file"/> sends this many bytes of its body, then closes the connection.</summary>
    public void CutNextAfter(string file, int bytes) => _cutAfter[file] = bytes;

    /// <summary>The next download of <paramref name="file"/> sends this many bytes, then nothing while the connection stays open.</summary>
    public void StallNextAfter(string file, int bytes) => _stallAfter[file] = bytes;

    /// <summary>Every download of <paramref name="file"/> has one byte flipped.</summary>
    public void Corrupt(string file) => _corrupt[file] = true;

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Git's object id of a blob, which the Hub gives as a small file's ETag.</summary>
#pragma warning disable CA5350 // git names objects by SHA-1; this is that name, not a security measure
    public static string GitBlobSha1(byte[] bytes) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));
#pragma warning restore CA5350

    public string ETagOf(string file) => _lfs.Contains(file) ? Sha256(_files[file]) : GitBlobSha1(_files[file]);

    private async Task ServeAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            _ = Task.Run(() => AnswerAsync(context));
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        var request = context.Request;
        var response = context.Response;
        string path = request.Url!.AbsolutePath;
        _requests.Enqueue(new HubRequest(request.HttpMethod, path, request.Headers["Range"], request.Headers["Authorization"]));
        try
        {
            string[] segments = [.. path.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString)];
            bool cut = false;
            if (segments is [Owner, Name, "resolve", var revision, .. var fileSegments])
                cut = await ResolveAsync(response, request.HttpMethod, revision, string.Join('/', fileSegments));
            else if (segments is ["cdn", var file])
                cut = await DownloadAsync(response, request.HttpMethod, file, request.Headers["Range"]);
            else
                response.StatusCode = 404;
            if (!cut) response.Close();
        }
        catch (Exception) when (_stopping.IsCancellationRequested)
        {
            response.Abort();
        }
    }

    /// <returns>Whether the connection was cut instead of the response finished.</returns>
    private async Task<bool> ResolveAsync(HttpListenerResponse response, string method, string revision, string file)
    {
        if (Unauthorized)
        {
            response.StatusCode = 401;
            response.Headers["X-Error-Code"] = "RepoNotFound";
            response.Headers["X-Error-Message"] = "Repository not found";
            return false;
        }
        if (revision != "main" && revision != Commit)
        {
            response.StatusCode = 404;
            response.Headers["X-Error-Code"] = "RevisionNotFound";
            return false;
        }
        response.Headers["X-Repo-Commit"] = Commit;
        if (!_files.TryGetValue(file, out var bytes))
        {
            response.StatusCode = 404;
            response.Headers["X-Error-Code"] = "EntryNotFound";
            return false;
        }
        if (_lfs.Contains(file))
        {
            response.StatusCode = 302;
            response.Headers["X-Linked-Etag"] = $"\"{Sha256(bytes)}\"";
            response.Headers["X-Linked-Size"] = bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            // The ETag of the LFS pointer file, which a client must not take for the blob's name.
            response.Headers["ETag"] = $"\"{GitBlobSha1(Encoding.ASCII.GetBytes("pointer " + file))}\"";
            string cdnPath = "/cdn/" + Uri.EscapeDataString(file);
            response.Headers["Location"] = AbsoluteRedirects ? new Uri(Endpoint, cdnPath).AbsoluteUri : cdnPath;
            return false;
        }
        response.Headers["ETag"] = $"\"{GitBlobSha1(bytes)}\"";
        return await SendAsync(response, method, bytes, 0, file);
    }

    /// <returns>Whether the connection was cut instead of the response finished.</returns>
    private async Task<bool> DownloadAsync(HttpListenerResponse response, string method, string file, string? range)
    {
        if (!_files.TryGetValue(file, out var bytes))
        {
            response.StatusCode = 404;
            return false;
        }
        if (_corrupt.ContainsKey(file))
        {
            bytes = [.. bytes];
            bytes[bytes.Length / 2] ^= 0xff;
        }
        long from = 0;
        if (range is not null && !IgnoreRange)
        {
            from = long.Parse(range["bytes=".Length..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
            if (from >= bytes.Length)
            {
                response.StatusCode = 416;
                response.Headers["Content-Range"] = $"bytes */{bytes.Length}";
                return false;
            }
            response.StatusCode = 206;
            response.Headers["Content-Range"] = $"bytes {from}-{bytes.Length - 1}/{bytes.Length}";
        }
        return await SendAsync(response, method, bytes, from, file);
    }

    /// <returns>Whether the connection was cut instead of the response finished.</returns>
    private async Task<bool> SendAsync(HttpListenerResponse response, string method, byte[] bytes, long from, string file)
    {
        response.ContentLength64 = bytes.Length - from;
        if (method == "HEAD") return false;
        var body = bytes.AsMemory((int)from);
        if (_cutAfter.TryRemove(file, out int cut))
        {
            await response.OutputStream.WriteAsync(body[..cut]);
            await response.OutputStream.FlushAsync();
            response.Abort();
            return true;
        }
        if (_stallAfter.TryRemove(file, out int stall))
        {
            await response.OutputStream.WriteAsync(body[..stall]);
            await response.OutputStream.FlushAsync();
            await Task.Delay(Timeout.Infinite, _stopping.Token);
        }
        await response.OutputStream.WriteAsync(body);
        return false;
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _listener.Close();
        _stopping.Dispose();
    }
}
