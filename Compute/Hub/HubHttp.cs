using System.Net;
using System.Net.Http.Headers;

namespace FtpCluster.Compute.Hub;

/// <summary>
/// HTTP as the Hub needs it: redirects followed here rather than by the handler (so a request can stop at the Hub's
/// own answer, which carries the file's headers, before the CDN), the token sent to the endpoint's origin alone,
/// no compression (sizes and checksums are of the bytes themselves), and a time limit on each wait for data rather
/// than on the whole transfer, so a stalled connection gives up while a slow, steady one goes on.
/// </summary>
internal sealed class HubHttp : IDisposable
{
    private const int MaxRedirects = 10;

    private readonly HttpClient _client;
    private readonly HubSettings _settings;

    public HubHttp(HubSettings settings)
    {
        _settings = settings;
        _client = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = settings.ReadTimeout,
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("ftpcluster", "1.0"));
        _client.DefaultRequestHeaders.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
    }

    /// <summary>
    /// Sends <paramref name="method"/> to <paramref name="url"/>, following redirects (relative or absolute Location)
    /// until a response that is no redirect or that <paramref name="stopAt"/> accepts. The caller disposes the response.
    /// </summary>
    /// <param name="rangeFrom">Asks for the bytes from this offset on (<c>Range: bytes=N-</c>), on every hop.</param>
    /// <param name="what">What is being fetched, for messages: "config.json of org/name".</param>
    public async Task<(HttpResponseMessage Response, Uri Url)> SendAsync(HttpMethod method, Uri url, long? rangeFrom,
        Func<HttpResponseMessage, bool> stopAt, string what, CancellationToken cancellation)
    {
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(method, url);
            if (_settings.Token is { } token && SameOrigin(url, _settings.Endpoint))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            if (rangeFrom is { } from)
                request.Headers.Range = new RangeHeaderValue(from, null);
            var response = await WithinReadTimeout(
                limit => _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, limit), what, url, cancellation);
            if ((int)response.StatusCode is < 300 or > 399 || response.Headers.Location is null || stopAt(response))
                return (response, url);
            response.Dispose();
            if (hop == MaxRedirects)
                throw new HubException($"fetching {what}: more than {MaxRedirects} redirects, the last to {url}");
            url = new Uri(url, response.Headers.Location);
        }
    }

    /// <summary>Reads once from <paramref name="body"/>, giving up after the read timeout without data.</summary>
    public Task<int> ReadAsync(Stream body, Memory<byte> buffer, string what, Uri url, CancellationToken cancellation) =>
        WithinReadTimeout(limit => body.ReadAsync(buffer, limit).AsTask(), what, url, cancellation);

    private async Task<T> WithinReadTimeout<T>(Func<CancellationToken, Task<T>> operation, string what, Uri url, CancellationToken cancellation)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        limit.CancelAfter(_settings.ReadTimeout);
        try
        {
            return await operation(limit.Token);
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            throw new HubException($"fetching {what} from {url}: no data for {_settings.ReadTimeout.TotalSeconds:0.#} s; "
                + "the connection stalled (run again to resume)");
        }
        catch (HttpRequestException e)
        {
            // No status: the Hub was never reached (no network, no name resolution), which a local checkpoint gets around.
            string hint = e.StatusCode is null ? "; without network access, pass a local checkpoint with --model PATH" : "";
            throw new HubException($"fetching {what} from {url} failed: {e.Message}{hint}", e);
        }
        catch (IOException e) when (e is not HubException)
        {
            throw new HubException($"fetching {what} from {url} broke off: {e.Message} (run again to resume)", e);
        }
    }

    private static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    public void Dispose() => _client.Dispose();
}
