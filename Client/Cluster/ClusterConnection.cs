using System.Net;
using FtpCluster.Grains.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using FtpCluster.Grains.Hosting.Tls;
using FtpCluster.Grains.Hosting.Transport;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Wire;
using Orleans.Configuration;
using Orleans.Serialization;

namespace FtpCluster.Client.Cluster;

/// <summary>An Orleans client connected to a cluster through a fixed list of gateways.</summary>
public sealed class ClusterConnection : IAsyncDisposable
{
    // The cluster may already be gone (an embedded one is killed right after): saying goodbye is
    // a courtesy that must not hold the command up.
    private static readonly TimeSpan DisconnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The service name the command line reports its telemetry under, when <c>OTEL_SERVICE_NAME</c> gives none.</summary>
    public const string ServiceName = "ftpcluster";

    private readonly IHost _host;

    private ClusterConnection(IHost host) => _host = host;

    public IClusterClient Client => _host.Services.GetRequiredService<IClusterClient>();

    /// <param name="tls">This client's certificate and the cluster CA, for a cluster whose silos run with TLS; null: no TLS.</param>
    /// <exception cref="InvalidOperationException">No gateway let us in; the message names them and why (for TLS, whose certificate was refused).</exception>
    public static async Task<ClusterConnection> ConnectAsync(
        IReadOnlyList<IPEndPoint> gateways, string clusterId, string serviceId = "ftpcluster", TlsCredentials? tls = null,
        CancellationToken cancellationToken = default)
    {
        // Empty: no appsettings or command line of its own; the environment only for the standard OTEL_* variables.
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddEnvironmentVariables();
        // The command line's console is its own: the client's log goes out over OTLP, when that is on, and nowhere else.
        builder.Logging.ClearProviders();
        builder.AddFtpClusterTelemetry(ServiceName);
        builder.UseOrleansClient(client =>
        {
            client
                .UseStaticClustering([.. gateways])
                .Configure<ClusterOptions>(cluster =>
                {
                    cluster.ClusterId = clusterId;
                    cluster.ServiceId = serviceId;
                })
                // The silos' limit: the largest replies (a score's logits) are checked against a deployment's
                // packet limit, which stays under it.
                .Configure<ClientMessagingOptions>(messaging => messaging.MaxMessageBodySize = MessageLimits.OrleansMaxMessageBodyBytes)
                // A placement that timed out while a silo was out of reach arrives as what it is (ClusterFailures).
                .Configure<ExceptionSerializationOptions>(exceptions => exceptions.SupportedNamespacePrefixes.Add(ClusterFailures.OrleansRetriesNamespace))
                // The silos' transport: large reads of what the gateway sends back (a score's logits).
                .UseFtpClusterTcpTransport()
                // The grains continue the trace of what the command does (a run's lines).
                .AddActivityPropagation();
            if (tls is not null) client.UseFtpClusterTls(tls);
            else client.UseNoTls();
        });
        var host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken);
            return new ClusterConnection(host);
        }
        catch (Exception e)
        {
            var handshakes = host.Services.GetService<TlsHandshakeFailures>()?.Describe() ?? [];
            host.Dispose();
            if (e is OperationCanceledException) throw;
            string why = handshakes.Count == 0 ? e.Message : $"TLS: {string.Join("; ", handshakes)}";
            throw new InvalidOperationException($"cannot connect to cluster '{clusterId}' through {string.Join(",", gateways)}: {why}", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var stopping = new CancellationTokenSource(DisconnectTimeout);
        try
        {
            await _host.StopAsync(stopping.Token);
        }
        catch (OperationCanceledException)
        {
        }
        _host.Dispose();
    }
}
