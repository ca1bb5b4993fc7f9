namespace FtpCluster.Compute.Hub;

/// <summary>
/// Where repo ids resolve, as huggingface_hub reads its environment, so that both share one cache: the cache folder
/// (<c>HF_HUB_CACHE</c>, else <c>HF_HOME/hub</c>, else <c>XDG_CACHE_HOME/huggingface/hub</c>, else
/// <c>~/.cache/huggingface/hub</c>), the endpoint (<c>HF_ENDPOINT</c>, default https://huggingface.co), the token
/// (<c>HF_TOKEN</c>, else the file <c>HF_HOME/token</c> that <c>huggingface-cli login</c> writes) and offline mode
/// (<c>HF_HUB_OFFLINE</c> = 1, true, yes or on).
/// </summary>
/// <param name="ReadTimeout">How long a connection may stay silent (connecting, waiting for headers, or between two
/// reads of a body) before the download gives up; a long download that keeps receiving never times out.</param>
public sealed record HubSettings(string CacheRoot, Uri Endpoint, string? Token, bool Offline, TimeSpan ReadTimeout)
{
    public static readonly Uri DefaultEndpoint = new("https://huggingface.co");

    public static readonly TimeSpan DefaultReadTimeout = TimeSpan.FromSeconds(30);

    public static HubSettings FromEnvironment() => FromVariables(Environment.GetEnvironmentVariable);

    /// <summary>The settings <paramref name="variable"/> (an environment) gives.</summary>
    /// <exception cref="ArgumentException">HF_ENDPOINT is not an http or https URL.</exception>
    public static HubSettings FromVariables(Func<string, string?> variable)
    {
        string? Get(string name) => variable(name) is { } value && value.Trim().Length > 0 ? value.Trim() : null;
        string home = Get("HF_HOME") ?? Path.Combine(
            Get("XDG_CACHE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "huggingface");
        string cacheRoot = Get("HF_HUB_CACHE") ?? Path.Combine(home, "hub");
        var endpoint = DefaultEndpoint;
        if (Get("HF_ENDPOINT") is { } endpointText
            && (!Uri.TryCreate(endpointText.TrimEnd('/'), UriKind.Absolute, out endpoint) || endpoint.Scheme is not ("http" or "https")))
            throw new ArgumentException($"HF_ENDPOINT '{endpointText}' is not an http or https URL (e.g. https://huggingface.co)");
        string tokenFile = Path.Combine(home, "token");
        string? token = Get("HF_TOKEN") ?? (File.Exists(tokenFile) ? File.ReadAllText(tokenFile).Trim() : null);
        bool offline = Get("HF_HUB_OFFLINE")?.ToUpperInvariant() is "1" or "TRUE" or "YES" or "ON";
        return new HubSettings(cacheRoot, endpoint, token is { Length: > 0 } ? token : null, offline, DefaultReadTimeout);
    }
}
