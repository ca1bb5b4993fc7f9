using System.Diagnostics;
using static FtpCluster.Grains.Telemetry.FtpClusterTelemetry;

namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// The coordinator's spans: one per online request or batch line (from its start to its answer), and one per
/// microbatch (from its send to the last stage's reply). Each is null when nothing listens, so none costs anything then.
/// </summary>
internal static class PipelineSpans
{
    /// <summary>An online request's or a batch line's span, a child of <paramref name="parent"/> (default: the current span).</summary>
    public static Activity? StartRequest(string name, CompletionLine line, ActivityContext parent = default)
    {
        var span = Source.StartActivity(name, ActivityKind.Internal, parent);
        span?.SetTag(Attributes.Request, line.Key);
        return span;
    }

    /// <summary>Tags a request's span with what it cost, or marks it failed with its error.</summary>
    public static void Finish(Activity? span, CompletionLineResult result)
    {
        if (span is null) return;
        span.SetTag("gen_ai.usage.input_tokens", result.PromptTokens);
        span.SetTag("gen_ai.usage.output_tokens", result.CompletionTokens);
        span.SetTag("ftpcluster.tokens_computed", result.TokensComputed);
        span.SetTag("ftpcluster.tokens_skipped", result.TokensSkipped);
        span.SetTag("ftpcluster.wire_bytes", result.WireBytes);
        if (!result.Succeeded)
        {
            span.SetTag(Attributes.ErrorType, result.ErrorCode);
            span.SetStatus(ActivityStatusCode.Error, result.ErrorMessage);
        }
    }

    /// <summary>
    /// A microbatch's span: a child of its first step's span (the request or line that step belongs to), linked to the
    /// spans of the others, so each request's trace reaches the stages that computed its rows.
    /// </summary>
    public static Activity? StartMicrobatch(string deployment, long microbatchId, PendingStep[] steps, int rows)
    {
        if (!Source.HasListeners()) return null;
        var parent = steps[0].Trace;
        var links = steps.Skip(1).Select(s => s.Trace)
            .Where(t => t != default && t != parent).Distinct()
            .Select(t => new ActivityLink(t)).ToArray();
        var span = Source.StartActivity(Spans.Microbatch, ActivityKind.Internal, parent, links: links);
        span?.SetTag(Attributes.Deployment, deployment);
        span?.SetTag(Attributes.Microbatch, microbatchId);
        span?.SetTag(Attributes.Rows, rows);
        span?.SetTag(Attributes.Sequences, steps.Length);
        return span;
    }
}
