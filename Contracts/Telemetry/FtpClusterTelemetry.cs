using System.Diagnostics;

namespace FtpCluster.Grains.Telemetry;

/// <summary>
/// The names FtpCluster reports under in OpenTelemetry: its meter and activity source, every instrument, span and
/// attribute (docs/telemetry.md says what each means and where it is recorded), and the names of the Orleans and
/// .NET sources its hosts export beside them.
/// </summary>
/// <remarks>
/// Instruments follow OpenTelemetry's semantic conventions where one exists (<c>gen_ai.*</c> for token usage and
/// latencies); FtpCluster's own are under <c>ftpcluster.*</c>, and so are their attributes.
/// </remarks>
public static class FtpClusterTelemetry
{
    /// <summary>The meter of every FtpCluster instrument (<see cref="FtpClusterMetrics"/>).</summary>
    public const string MeterName = "FtpCluster";

    /// <summary>The activity source of FtpCluster's spans (<see cref="Source"/>).</summary>
    public const string ActivitySourceName = "FtpCluster";

    /// <summary>Orleans' meter: messaging, membership, grain counts, call latencies.</summary>
    public const string OrleansMeterName = "Microsoft.Orleans";

    /// <summary>Orleans' spans of grain calls made by application code (with activity propagation on).</summary>
    public const string OrleansApplicationSourceName = "Microsoft.Orleans.Application";

    /// <summary>Orleans' spans of calls its runtime makes (membership, directory, reminders): not exported by the shared setup
    /// (each is a trace of its own, hundreds a minute); add it to a tracer when debugging Orleans itself.</summary>
    public const string OrleansRuntimeSourceName = "Microsoft.Orleans.Runtime";

    /// <summary>The source of FtpCluster's spans: a stage's Forward, a coordinator's microbatch, an online request, a batch line, a run.</summary>
    public static ActivitySource Source { get; } = new(ActivitySourceName);

    /// <summary>Instrument names.</summary>
    public static class Instruments
    {
        public const string TokensComputed = "ftpcluster.block.tokens.computed";
        public const string TokensSkipped = "ftpcluster.block.tokens.skipped";
        public const string WireBytes = "ftpcluster.wire.bytes";
        public const string StageComputeDuration = "ftpcluster.stage.compute.duration";
        public const string StageRows = "ftpcluster.stage.rows";
        public const string MicrobatchRows = "ftpcluster.microbatch.rows";
        public const string KvCacheBytes = "ftpcluster.stage.kv_cache.size";
        public const string SequencesWaiting = "ftpcluster.sequences.waiting";
        public const string OnlineRequests = "ftpcluster.online.requests";
        public const string BatchLines = "ftpcluster.batch.lines";
        public const string TokenUsage = "gen_ai.client.token.usage";
        public const string TimeToFirstToken = "gen_ai.server.time_to_first_token";
        public const string TimePerOutputToken = "gen_ai.server.time_per_output_token";
        public const string RequestDuration = "gen_ai.server.request.duration";
    }

    /// <summary>Attribute names, on instruments and spans.</summary>
    public static class Attributes
    {
        public const string Deployment = "ftpcluster.deployment";
        public const string Block = "ftpcluster.block";
        public const string Stage = "ftpcluster.stage";
        public const string Boundary = "ftpcluster.boundary";
        public const string TargetStage = "ftpcluster.stage.target";
        public const string Encoding = "ftpcluster.wire.encoding";
        public const string Layers = "ftpcluster.layers";
        public const string Rows = "ftpcluster.rows";
        public const string Sequences = "ftpcluster.sequences";
        public const string Microbatch = "ftpcluster.microbatch";
        public const string BytesSent = "ftpcluster.bytes_sent";
        public const string Job = "ftpcluster.job";
        public const string Outcome = "ftpcluster.outcome";
        public const string Line = "ftpcluster.line";
        public const string Request = "ftpcluster.request";
        public const string Lines = "ftpcluster.lines";
        public const string OperationName = "gen_ai.operation.name";
        public const string ProviderName = "gen_ai.provider.name";
        public const string RequestModel = "gen_ai.request.model";
        public const string TokenType = "gen_ai.token.type";
        public const string ErrorType = "error.type";
    }

    /// <summary>Span names.</summary>
    public static class Spans
    {
        public const string StageForward = "ftpcluster.stage.forward";
        public const string Microbatch = "ftpcluster.microbatch";
        public const string OnlineRequest = "ftpcluster.online_request";
        public const string BatchLine = "ftpcluster.batch_line";
        public const string Run = "ftpcluster.run";
    }

    /// <summary>Values of <see cref="Attributes.TokenType"/>, <see cref="Attributes.Outcome"/> and <see cref="Attributes.ProviderName"/>.</summary>
    public static class Values
    {
        public const string InputTokens = "input";
        public const string OutputTokens = "output";
        public const string Completed = "completed";
        public const string Failed = "failed";
        public const string Provider = "ftpcluster";
        public const string ChatOperation = "chat";
        public const string TextCompletionOperation = "text_completion";
    }
}
