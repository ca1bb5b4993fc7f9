using System.Net;
using FtpCluster.Api.Endpoints;
using FtpCluster.Grains.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace FtpCluster.Api;

/// <summary>Hosting of the OpenAI-compatible HTTP API in a silo's web application.</summary>
public static class HttpApiHostingExtensions
{
    private const string ReadyTag = "ready";

    /// <summary>
    /// Listens on <see cref="HttpApiOptions.Port"/> — every address when API keys are configured, loopback only when
    /// not — and registers what the endpoints use.
    /// </summary>
    /// <exception cref="InvalidOperationException">The API key file cannot be read or has no key.</exception>
    public static WebApplicationBuilder AddFtpClusterHttpApi(this WebApplicationBuilder builder, HttpApiOptions options)
    {
        var keys = new ApiKeys(options.ApiKeyFile);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(keys.Required ? IPAddress.Any : IPAddress.Loopback, options.Port);
            // Each endpoint sets its own bound as it reads (files take far more than JSON bodies).
            kestrel.Limits.MaxRequestBodySize = options.MaxJsonBodyBytes;
        });
        builder.Services.Configure<HttpApiOptions>(o =>
        {
            o.Port = options.Port;
            o.ApiKeyFile = options.ApiKeyFile;
            o.MetricsEndpoint = options.MetricsEndpoint;
            o.MaxJsonBodyBytes = options.MaxJsonBodyBytes;
            o.MaxTokens = options.MaxTokens;
            o.MaxStreamsPerKey = options.MaxStreamsPerKey;
            o.MaxWaitingSequences = options.MaxWaitingSequences;
            o.RetryAfterSeconds = options.RetryAfterSeconds;
        });
        builder.Services.AddSingleton(keys);
        builder.Services.AddSingleton(new StreamSlots(options.MaxStreamsPerKey));
        builder.Services.AddSingleton<DeploymentDirectory>();
        builder.Services.AddHealthChecks().AddCheck<ClusterReadyHealthCheck>("cluster", tags: [ReadyTag]);
        AddHttpTelemetry(builder, options.MetricsEndpoint);
        return builder;
    }

    /// <summary>
    /// ASP.NET Core's share of the silo's telemetry: a server span per request (the root of the trace the grains
    /// continue) when traces go out over OTLP, Kestrel's and the requests' metrics whenever metrics are collected, and
    /// the Prometheus exporter behind <c>/metrics</c>.
    /// </summary>
    private static void AddHttpTelemetry(WebApplicationBuilder builder, bool metricsEndpoint)
    {
        bool otlp = FtpClusterTelemetryHosting.ExportsOverOtlp(builder.Configuration);
        if (!otlp && !metricsEndpoint) return;
        var telemetry = builder.Services.AddOpenTelemetry().WithMetrics(metrics =>
        {
            metrics.AddAspNetCoreInstrumentation();
            if (metricsEndpoint) metrics.AddPrometheusExporter();
        });
        if (otlp) telemetry.WithTracing(tracing => tracing.AddAspNetCoreInstrumentation());
    }

    /// <summary>The API under <c>/v1</c> (behind the keys, when there are any) and the health checks beside it.</summary>
    public static WebApplication MapFtpClusterHttpApi(this WebApplication app)
    {
        var keys = app.Services.GetRequiredService<ApiKeys>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("FtpCluster.Api");
        var options = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<HttpApiOptions>>().Value;
        if (keys.Required)
            logger.LogWarning("HTTP API on port {Port} of every address; requests need a key from {KeyFile}", options.Port, options.ApiKeyFile);
        else
            logger.LogWarning("HTTP API on http://127.0.0.1:{Port} only (loopback): no API key file (--api-key-file) is configured", options.Port);

        app.UseMiddleware<ApiErrorMiddleware>();
        app.UseWhen(http => http.Request.Path.StartsWithSegments("/v1"), v1 => v1.Use(async (http, next) =>
        {
            if (keys.Required && (ApiKeys.BearerToken(http.Request) is not { } key || !keys.IsValid(key)))
                throw ApiException.BadKey("Incorrect API key provided: send one of this server's keys as 'Authorization: Bearer KEY'");
            await next(http);
        }));

        var v1 = app.MapGroup("/v1");
        ModelEndpoints.Map(v1);
        CompletionEndpoints.Map(v1);
        FileEndpoints.Map(v1);
        BatchEndpoints.Map(v1);

        // Liveness asks nothing of the cluster (the process answers); readiness does.
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains(ReadyTag) });
        if (options.MetricsEndpoint) app.MapPrometheusScrapingEndpoint();
        app.MapFallback((HttpContext http) => throw ApiException.NotFound("unknown_url", null,
            $"unknown request URL: {http.Request.Method} {http.Request.Path}"));
        return app;
    }
}
