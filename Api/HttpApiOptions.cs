namespace FtpCluster.Api;

/// <summary>The HTTP API's bounds: past each, a client gets a 413 or a 429 rather than a queue without end.</summary>
public sealed class HttpApiOptions
{
    /// <summary>The port it listens on.</summary>
    public int Port { get; set; }

    /// <summary>The API keys' file (<see cref="ApiKeys"/>); null: no keys, and the port binds to loopback only.</summary>
    public string? ApiKeyFile { get; set; }

    /// <summary>
    /// Serve the process's metrics in Prometheus' text format at <c>/metrics</c> (outside <c>/v1</c>: no key needed, like
    /// the health checks). The silo's telemetry setup must collect them (<c>AddFtpClusterTelemetry</c> with servesMetrics).
    /// </summary>
    public bool MetricsEndpoint { get; set; }

    /// <summary>Bytes of a JSON request body (completions, batches). Default 16 MiB; larger: 413.</summary>
    public long MaxJsonBodyBytes { get; set; } = 16 << 20;

    /// <summary>The largest <c>max_tokens</c> (or <c>max_completion_tokens</c>) a request may ask for. Default 32,768; more: 400.</summary>
    public int MaxTokens { get; set; } = 32_768;

    /// <summary>Streamed completions one API key (or, without keys, every client together) may have open on this silo. Default 256; more: 429.</summary>
    public int MaxStreamsPerKey { get; set; } = 256;

    /// <summary>Sequences a deployment may have waiting for room before a new online request is refused. Default 1024; more: 429.</summary>
    public int MaxWaitingSequences { get; set; } = 1024;

    /// <summary>What a 429's <c>Retry-After</c> header says, in seconds. Default 1.</summary>
    public int RetryAfterSeconds { get; set; } = 1;
}
