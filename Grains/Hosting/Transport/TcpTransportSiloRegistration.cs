namespace FtpCluster.Grains.Hosting.Transport;

/// <summary>
/// Puts FtpCluster's TCP transport in the place of Orleans' socket transport on a silo: silo-to-silo connections
/// both ways and the gateway listener. The client's side, and how the replacement works, are in
/// <see cref="TcpTransportRegistration"/>; this overload is apart from it because only a silo has an
/// <see cref="ISiloBuilder"/>, and the clients' assembly does not reference the silo runtime.
/// </summary>
public static class TcpTransportSiloRegistration
{
    /// <summary>Silo to silo and client to gateway go through FtpCluster's TCP transport.</summary>
    /// <exception cref="InvalidOperationException">Orleans' transport registrations are not the ones expected.</exception>
    public static ISiloBuilder UseFtpClusterTcpTransport(this ISiloBuilder builder, Action<TcpTransportOptions>? configure = null)
    {
        TcpTransportRegistration.Replace(builder.Services, configure, expectedFactories: 1, expectedListenerFactories: 2, "a silo");
        return builder;
    }
}
