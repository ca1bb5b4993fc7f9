using FtpCluster.Grains.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// The OpenTelemetry setup silos and the command line share: FtpCluster's meter and spans, Orleans' meter and grain-call
/// spans, the runtime's and HttpClient's metrics, and logs, exported over OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is
/// set. Without it nothing is exported and nothing listens (the instruments then cost next to nothing), unless the host
/// serves its metrics itself (a silo's <c>/metrics</c>, which the HTTP API adds).
/// </summary>
/// <remarks>
/// Lives beside the silo options (not in the silo) because the command line's Orleans client uses it too, so a
/// <c>run</c> starts the trace its lines continue on the silos. ASP.NET Core's share (its server spans and metrics, the
/// Prometheus endpoint) is the HTTP API's (<c>FtpCluster.Api</c>), so clients of the cluster need no web framework.
/// Orleans carries the trace between grains once activity propagation is on (<c>AddActivityPropagation</c> on the silo
/// and client builders).
/// </remarks>
public static class FtpClusterTelemetryHosting
{
    /// <summary>Where OTLP goes; the exporter reads it and the other standard <c>OTEL_*</c> variables itself.</summary>
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>The service name, when the environment gives one (the Aspire app host does, per resource).</summary>
    public const string ServiceNameVariable = "OTEL_SERVICE_NAME";

    /// <summary>Whether <paramref name="configuration"/> names an OTLP endpoint.</summary>
    public static bool ExportsOverOtlp(IConfiguration configuration) => !string.IsNullOrWhiteSpace(configuration[OtlpEndpointVariable]);

    /// <summary>The service name the host reports under: <c>OTEL_SERVICE_NAME</c>, else <paramref name="fallback"/>.</summary>
    public static string ServiceName(IConfiguration configuration, string fallback) =>
        configuration[ServiceNameVariable] is { Length: > 0 } configured ? configured : fallback;

    /// <summary>
    /// Registers the metrics (when exported over OTLP or <paramref name="servesMetrics"/>), the traces and the logs (when
    /// exported over OTLP) of this process. Call it after the host's own logging providers are set: the console output
    /// stays, and OpenTelemetry's logger joins it.
    /// </summary>
    /// <param name="serviceName">The service name when <c>OTEL_SERVICE_NAME</c> gives none: a silo's node name, the command line's <c>ftpcluster</c>.</param>
    /// <param name="servesMetrics">The host serves its metrics itself (a Prometheus endpoint), so they are collected without OTLP too.</param>
    public static IHostApplicationBuilder AddFtpClusterTelemetry(this IHostApplicationBuilder builder, string serviceName, bool servesMetrics = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(serviceName);
        bool otlp = ExportsOverOtlp(builder.Configuration);
        if (!otlp && !servesMetrics) return builder;

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName(builder.Configuration, serviceName)))
            .WithMetrics(metrics => metrics
                .AddMeter(FtpClusterTelemetry.MeterName, FtpClusterTelemetry.OrleansMeterName)
                .AddRuntimeInstrumentation()
                .AddHttpClientInstrumentation());
        if (!otlp) return builder;

        telemetry
            .WithTracing(tracing => tracing
                // Not Orleans' runtime source: it makes every membership ping, load report and reminder read a trace of
                // its own (hundreds a minute on three idle silos), burying the requests' traces.
                .AddSource(FtpClusterTelemetry.ActivitySourceName, FtpClusterTelemetry.OrleansApplicationSourceName)
                .AddHttpClientInstrumentation())
            .WithLogging(configureBuilder: null, configureOptions: logging =>
            {
                // Structured: the message template's values travel as attributes, the rendered text beside them.
                logging.IncludeFormattedMessage = true;
                logging.IncludeScopes = true;
            })
            .UseOtlpExporter();
        return builder;
    }
}
