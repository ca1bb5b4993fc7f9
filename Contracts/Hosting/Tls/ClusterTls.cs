using System.Security.Authentication;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Configuration;
using Orleans.Connections.Security;

namespace FtpCluster.Grains.Hosting.Tls;

/// <summary>
/// Mutual TLS on FtpCluster's connections with Orleans' own TLS middleware (Microsoft.Orleans.Connections.Security), which
/// runs over any transport that gives it a <see cref="ConnectionContext"/>, FtpCluster's among them. Both ends present a
/// certificate and check the other's with <see cref="ClusterCertificateValidator"/> (the cluster CA only, TLS 1.3 only).
/// This holds the client's registration and what the silo's (in FtpCluster.Grains) shares with it.
/// </summary>
public static class ClusterTls
{
    /// <summary>The logger category of the lines that say why a handshake failed.</summary>
    public const string LogCategory = "FtpCluster.Tls";

    // Both ends are FtpCluster processes of one version: nothing older needs to be spoken.
    private const SslProtocols Protocols = SslProtocols.Tls13;

    /// <summary>
    /// The client's connections to gateways use TLS with <paramref name="credentials"/>: the gateway must present a node
    /// certificate of the cluster, and is shown this client's. Why a handshake failed is kept in the client's
    /// <see cref="TlsHandshakeFailures"/> service, and a failed handshake ends the client's connection attempts
    /// (<see cref="TlsRefusalRetryFilter"/>).
    /// </summary>
    public static IClientBuilder UseFtpClusterTls(this IClientBuilder builder, TlsCredentials credentials)
    {
        builder.Services.AddSingleton<TlsHandshakeFailures>();
        builder.UseConnectionRetryFilter<TlsRefusalRetryFilter>();
        builder.Configure<ClientConnectionOptions>(connections =>
            connections.ConfigureConnection(connection => Connect(connection, credentials, "gateway")));
        return builder;
    }

    /// <summary>
    /// The client connects without TLS; a gateway that requires TLS is recognised by its silence
    /// (<see cref="TlsRequiredDetector"/>), recorded in the client's <see cref="TlsHandshakeFailures"/> service, and ends the
    /// client's connection attempts at once.
    /// </summary>
    public static IClientBuilder UseNoTls(this IClientBuilder builder)
    {
        var failures = new TlsHandshakeFailures();
        builder.Services.AddSingleton(failures);
        builder.UseConnectionRetryFilter<TlsRefusalRetryFilter>();
        builder.Configure<ClientConnectionOptions>(connections =>
            connections.ConfigureConnection(connection => connection.Use(TlsRequiredDetector.Middleware(failures))));
        return builder;
    }

    /// <summary>Connections this process accepts: TLS server, requiring a certificate the cluster issued for <paramref name="peers"/>.</summary>
    internal static void Accept(IConnectionBuilder connection, TlsCredentials credentials, ClusterCertificateRole peers, string where)
    {
        connection.Use(Observer(connection, credentials, where, accepting: true).Wrap);
        connection.UseServerTls(Options(credentials, peers));
    }

    /// <summary>Connections this process opens: TLS client, requiring the peer's node certificate and showing its own.</summary>
    internal static void Connect(IConnectionBuilder connection, TlsCredentials credentials, string where)
    {
        connection.Use(Observer(connection, credentials, where, accepting: false).Wrap);
        var options = Options(credentials, ClusterCertificateRole.Node);
        // Always this certificate: left to choose, the TLS stack offers only a certificate whose issuer is among those the
        // server names, and a server is not bound to name any.
        options.LocalClientCertificateSelector = (_, _, _, _, _) => credentials.Certificate;
        connection.UseClientTls(options);
        connection.Use(TlsHandshakeObserver.WatchAnswer);
    }

    private static TlsOptions Options(TlsCredentials credentials, ClusterCertificateRole peers) => new()
    {
        LocalCertificate = credentials.Certificate,
        RemoteCertificateMode = RemoteCertificateMode.RequireCertificate,
        ClientCertificateMode = RemoteCertificateMode.RequireCertificate,
        // Replaces the system's verdict (which trusts the machine's store and checks host names) with the cluster's.
        RemoteCertificateValidation = (certificate, _, _) => TlsHandshakeObserver.Judge(credentials.Validator, certificate, peers),
        SslProtocols = Protocols,
    };

    private static TlsHandshakeObserver Observer(IConnectionBuilder connection, TlsCredentials credentials, string where, bool accepting)
    {
        var services = connection.ApplicationServices;
        var logger = services.GetService<ILoggerFactory>()?.CreateLogger(LogCategory) ?? NullLogger.Instance;
        return new TlsHandshakeObserver(where, accepting, logger, services.GetService<TlsHandshakeFailures>(), credentials.Certificate);
    }
}
