using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;

namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// Mutual TLS on a silo's connections (<see cref="ClusterTls"/>): its silo port accepts only node certificates of the
/// cluster, so a client's certificate cannot join as a silo; its gateway accepts client and node certificates; the
/// connections it opens to other silos require their node certificates. Apart from the client's registration because only
/// a silo has an <see cref="ISiloBuilder"/>.
/// </summary>
public static class ClusterTlsSiloRegistration
{
    /// <summary>Every connection of the silo uses TLS with <paramref name="credentials"/>, a node certificate of the cluster.</summary>
    /// <exception cref="ArgumentException"><paramref name="credentials"/> are a client's, which cannot serve.</exception>
    public static ISiloBuilder UseFtpClusterTls(this ISiloBuilder builder, TlsCredentials credentials)
    {
        if (credentials.Role != ClusterCertificateRole.Node)
            throw new ArgumentException($"a silo needs a node certificate, not a {credentials.Role.Word()} certificate ({credentials.Files.Certificate})", nameof(credentials));
        builder.Services.AddSingleton<TlsHandshakeFailures>();
        builder.Configure<SiloConnectionOptions>(connections =>
        {
            connections.ConfigureSiloInboundConnection(c => ClusterTls.Accept(c, credentials, ClusterCertificateRole.Node, "silo port"));
            connections.ConfigureGatewayInboundConnection(c => ClusterTls.Accept(c, credentials, ClusterCertificateRole.Client, "gateway port"));
            connections.ConfigureSiloOutboundConnection(c => ClusterTls.Connect(c, credentials, "silo"));
        });
        return builder;
    }
}
