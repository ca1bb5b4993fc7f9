using System.Globalization;
using System.Net.Http.Json;
using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Tests;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Telemetry;

namespace FtpCluster.Cluster.Tests;

/// <summary>What the telemetry tests share: aidreams260K deployed over two stages and served, and a chat completion through HTTP.</summary>
internal static class TelemetryWorkload
{
    public const string ModelName = "aidreams";

    public static string DeploymentId { get; } = DeploymentIds.For(JobLines.Aidreams, 2, "f32", storage: null);

    public static Task DeployAsync(IClusterClient client) =>
        client.GetGrain<ICoordinatorGrain>(DeploymentId).Deploy(new DeploymentRequest(JobLines.Aidreams, Stages: 2, ServedName: ModelName));

    /// <summary>A chat completion of a few tokens through silo's HTTP API on <paramref name="port"/>.</summary>
    public static async Task ChatAsync(int port)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/v1/"), Timeout = TimeSpan.FromMinutes(2) };
        using var response = await http.PostAsJsonAsync("chat/completions", new
        {
            model = ModelName,
            messages = new[] { new { role = "user", content = "I dreamed of" } },
            max_tokens = 6,
            temperature = 0,
        });
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
    }
}

/// <summary>Three silos, each serving the HTTP API and its metrics at <c>/metrics</c> (<c>--metrics</c>); the model deployed.</summary>
public sealed class MetricsCluster : ThreeSiloCluster, IAsyncLifetime
{
    public IReadOnlyDictionary<string, int> HttpPorts { get; private set; } = new Dictionary<string, int>();

    protected override void Configure(FtpClusterSiloOptions[] options)
    {
        int[] ports = SiloProcess.FreeLoopbackPorts(options.Length);
        for (int i = 0; i < options.Length; i++)
        {
            options[i].HttpPort = ports[i];
            options[i].Metrics = true;
        }
        HttpPorts = options.ToDictionary(o => o.NodeName, o => o.HttpPort!.Value);
    }

    async Task IAsyncLifetime.InitializeAsync()
    {
        await InitializeAsync();
        if (SharedModels.Root is not null) await TelemetryWorkload.DeployAsync(Client);
    }

    async Task IAsyncLifetime.DisposeAsync() => await DisposeAsync();
}

/// <summary>Three silos exporting over OTLP to a receiver in the test, silo a serving the HTTP API; the model deployed.</summary>
public sealed class TracingCluster : ThreeSiloCluster, IAsyncLifetime
{
    public OtlpTraceReceiver Receiver { get; } = new();

    public int HttpPort { get; private set; }

    protected override void Configure(FtpClusterSiloOptions[] options)
    {
        HttpPort = SiloProcess.FreeLoopbackPorts(1)[0];
        options[0].HttpPort = HttpPort;
    }

    protected override IReadOnlyDictionary<string, string> SiloEnvironment() => new Dictionary<string, string>
    {
        [FtpClusterTelemetryHosting.OtlpEndpointVariable] = Receiver.Endpoint.ToString().TrimEnd('/'),
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        // Spans leave within a fifth of a second of ending, so the test waits on them briefly.
        ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        ["OTEL_BLRP_SCHEDULE_DELAY"] = "200",
    };

    async Task IAsyncLifetime.InitializeAsync()
    {
        await InitializeAsync();
        if (SharedModels.Root is not null) await TelemetryWorkload.DeployAsync(Client);
    }

    async Task IAsyncLifetime.DisposeAsync()
    {
        await DisposeAsync();
        Receiver.Dispose();
    }
}

/// <summary>The Prometheus endpoint of silos started with <c>--metrics</c>: FtpCluster's instruments and Orleans' beside them.</summary>
public sealed class TelemetryMetricsTests(MetricsCluster cluster) : IClassFixture<MetricsCluster>
{
    [SharedModelsFact]
    public async Task After_a_chat_completion_the_metrics_endpoints_show_FTP_at_work_and_Orleans_meters()
    {
        await TelemetryWorkload.ChatAsync(cluster.HttpPorts["a"]);

        // The stages, the coordinator and the HTTP API may each be on another silo: the cluster's figures are their sum.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        Dictionary<string, PrometheusText> scraped;
        while (true)
        {
            scraped = await ScrapeAllAsync();
            var all = PrometheusText.Join(scraped.Values);
            bool complete = all.Sum("ftpcluster_block_tokens_computed_total") > 0
                && all.Sum("ftpcluster_wire_bytes_total", (FtpClusterTelemetry.Attributes.Boundary, "0")) > 0
                && all.Sum("ftpcluster_stage_compute_duration_seconds_count") > 0
                && all.Sum("gen_ai_server_time_to_first_token_seconds_count") > 0;
            if (complete || DateTime.UtcNow > deadline) break;
            await Task.Delay(200);
        }
        var metrics = PrometheusText.Join(scraped.Values);
        string names = string.Join(", ", metrics.Names.Order());

        Assert.True(metrics.Sum("ftpcluster_block_tokens_computed_total") > 0, $"no tokens computed; metrics: {names}");
        // A dense deployment: every block computes every token.
        Assert.Equal(0, metrics.Sum("ftpcluster_block_tokens_skipped_total"));
        Assert.True(metrics.Sum("ftpcluster_wire_bytes_total", (FtpClusterTelemetry.Attributes.Boundary, "0")) > 0,
            $"no wire bytes at boundary 0; metrics: {names}");
        Assert.True(metrics.Sum("ftpcluster_stage_compute_duration_seconds_count") >= 2, "each of the two stages computed at least once");
        Assert.True(metrics.Sum("ftpcluster_microbatch_rows_count") > 0, $"no microbatch rows; metrics: {names}");
        Assert.True(metrics.Sum("gen_ai_server_time_to_first_token_seconds_count") >= 1, $"no time to first token; metrics: {names}");
        Assert.True(metrics.Sum("gen_ai_client_token_usage_count", (FtpClusterTelemetry.Attributes.TokenType, "output")) >= 1,
            $"no output token usage; metrics: {names}");
        // Both stages report their KV caches (empty again once the request released its sequence).
        Assert.Equal(["0", "1"], metrics.LabelValues("ftpcluster_stage_kv_cache_size_bytes", FtpClusterTelemetry.Attributes.Stage).Order());
        Assert.Contains("ftpcluster_sequences_waiting", metrics.Names);
        Assert.All(scraped, silo => Assert.True(silo.Value.Names.Any(n => n.StartsWith("orleans_", StringComparison.Ordinal)),
            $"silo {silo.Key} has no Orleans meters: {string.Join(", ", silo.Value.Names.Order())}"));
    }

    private async Task<Dictionary<string, PrometheusText>> ScrapeAllAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var scraped = new Dictionary<string, PrometheusText>();
        foreach (var (node, port) in cluster.HttpPorts)
            scraped[node] = PrometheusText.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/metrics"));
        return scraped;
    }
}

/// <summary>Traces over OTLP: one trace per HTTP request, from ASP.NET Core's server span through the coordinator to the stages.</summary>
public sealed class TelemetryTraceTests(TracingCluster cluster) : IClassFixture<TracingCluster>
{
    [SharedModelsFact]
    public async Task A_chat_completion_is_one_trace_from_the_HTTP_server_span_through_stages_on_two_silos()
    {
        await TelemetryWorkload.ChatAsync(cluster.HttpPort);

        var trace = await cluster.Receiver.WaitForAsync(CompleteChatTrace, TimeSpan.FromSeconds(60), Explain);

        var server = Assert.Single(trace, s => s.ParentSpanId.Length == 0);
        Assert.Equal(ReceivedSpan.ServerKind, server.Kind);
        Assert.Equal("a", server.Service);
        var stages = trace.Where(s => s.Name == FtpClusterTelemetry.Spans.StageForward).ToArray();
        Assert.Equal([0L, 1L], stages.Select(s => (long)s.Attributes[FtpClusterTelemetry.Attributes.Stage]!).Distinct().Order());
        Assert.All(stages, s =>
        {
            Assert.Equal(TelemetryWorkload.DeploymentId, s.Attributes[FtpClusterTelemetry.Attributes.Deployment]);
            Assert.Matches("^[0-9]+-[0-9]+$", (string)s.Attributes[FtpClusterTelemetry.Attributes.Layers]!);
            Assert.True((long)s.Attributes[FtpClusterTelemetry.Attributes.Rows]! > 0);
        });
        Assert.All(stages.Where(s => (long)s.Attributes[FtpClusterTelemetry.Attributes.Stage]! == 0),
            s => Assert.True((long)s.Attributes[FtpClusterTelemetry.Attributes.BytesSent]! > 0));
        Assert.Contains(trace, s => s.Name == FtpClusterTelemetry.Spans.OnlineRequest);
        Assert.Contains(trace, s => s.Name == FtpClusterTelemetry.Spans.Microbatch);
    }

    /// <summary>
    /// The trace whose root is the chat completion's server span, once it holds stage spans from two silos and every
    /// span's parent has arrived too; null while not.
    /// </summary>
    private static ReceivedSpan[]? CompleteChatTrace(IReadOnlyList<ReceivedSpan> spans)
    {
        foreach (var trace in spans.GroupBy(s => s.TraceId))
        {
            var members = trace.ToArray();
            if (!members.Any(IsChatServerSpan)) continue;
            var ids = members.Select(s => s.SpanId).ToHashSet();
            bool linked = members.All(s => s.ParentSpanId.Length == 0 || ids.Contains(s.ParentSpanId));
            int stageSilos = members.Where(s => s.Name == FtpClusterTelemetry.Spans.StageForward).Select(s => s.Service).Distinct().Count();
            if (linked && stageSilos >= 2) return members;
        }
        return null;
    }

    private static bool IsChatServerSpan(ReceivedSpan span) =>
        span.Kind == ReceivedSpan.ServerKind && span.Attributes.GetValueOrDefault("url.path") as string == "/v1/chat/completions";

    private static string Explain(IReadOnlyList<ReceivedSpan> spans)
    {
        var chat = spans.Where(IsChatServerSpan).Select(s => s.TraceId).ToHashSet();
        var shown = chat.Count > 0 ? spans.Where(s => chat.Contains(s.TraceId)) : spans.Take(40);
        var names = spans.GroupBy(s => s.Name).OrderByDescending(g => g.Count()).Take(10).Select(g => $"{g.Key} x{g.Count()}");
        return $"most received: {string.Join(", ", names)}{Environment.NewLine}{string.Join(Environment.NewLine, shown)}";
    }
}
