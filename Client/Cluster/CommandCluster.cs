using System.Net;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Hosting.Tls;

namespace FtpCluster.Client.Cluster;

/// <summary>
/// The cluster one command runs against: an embedded cluster of <c>--stages N</c> silo processes it
/// starts for itself (and stops when disposed), or a running cluster it connects to through
/// <c>--cluster</c>'s gateways.
/// </summary>
internal sealed class CommandCluster : IAsyncDisposable
{
    private readonly EmbeddedCluster? _embedded;
    private readonly ClusterConnection _connection;

    private CommandCluster(EmbeddedCluster? embedded, ClusterConnection connection)
    {
        _embedded = embedded;
        _connection = connection;
    }

    public IClusterClient Client => _connection.Client;

    /// <summary>Starts (printing each silo on stderr) or connects to the cluster <paramref name="target"/> names.</summary>
    /// <param name="configureSilo">Adjusts each embedded silo's options before it starts (device, threads).</param>
    public static async Task<CommandCluster> OpenAsync(
        ClusterTarget target, Action<FtpClusterSiloOptions>? configureSilo, CancellationToken cancellationToken)
    {
        EmbeddedCluster? embedded = null;
        try
        {
            IPEndPoint[] gateways;
            string clusterId = target.ClusterId;
            if (target.Gateways is null)
            {
                var silos = EmbeddedCluster.LocalSiloOptions(target.Stages!.Value, $"ftpcluster-embedded-{Environment.ProcessId}");
                if (configureSilo is not null)
                    foreach (var silo in silos) configureSilo(silo);
                embedded = await EmbeddedCluster.StartAsync(silos, cancellationToken: cancellationToken);
                foreach (var silo in embedded.Silos)
                    Console.Error.WriteLine($"cluster: silo {silo.Ready.NodeName} pid {silo.Ready.ProcessId} gateway {silo.Ready.Gateway}");
                gateways = [.. embedded.Gateways];
                clusterId = embedded.ClusterId;
            }
            else
            {
                gateways = await ClusterTarget.ResolveAsync(target.Gateways, cancellationToken);
            }
            // An embedded cluster is on loopback, without TLS (ClusterOptionGroup refuses --tls with it).
            var tls = target.Tls is null ? null : TlsCredentials.Load(target.Tls, ClusterCertificateRole.Client);
            return new CommandCluster(embedded, await ClusterConnection.ConnectAsync(gateways, clusterId, cancellationToken: cancellationToken, tls: tls));
        }
        catch
        {
            embedded?.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync();
        _embedded?.Dispose();
    }
}
