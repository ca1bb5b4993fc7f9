using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace FtpCluster.Grains.Hosting.Transport;

/// <summary>
/// Puts FtpCluster's TCP transport (<see cref="TcpConnection"/>) in the place of Orleans' socket transport, on
/// silos (silo-to-silo connections both ways, and the gateway listener) and on clients (connections to gateways).
/// </summary>
/// <remarks>
/// Orleans registers its transport as keyed singletons: on a silo one <see cref="IConnectionFactory"/> (outbound
/// silo connections) and two <see cref="IConnectionListenerFactory"/>s (the silo and the gateway listener), on a
/// client one <see cref="IConnectionFactory"/>, each under a key object of its own that Orleans keeps internal. The
/// silo and client builders add those registrations before any configuration runs, so here they are found in the
/// service collection and replaced, key kept, by this transport's. Anything else found there (another transport
/// installed first, an Orleans version that registers its transport differently) is refused with an exception
/// rather than left half-replaced: a silo must not run on a transport other than the one it is said to run on.
/// </remarks>
public static class TcpTransportRegistration
{
    /// <summary>The logger category of the transport's connections, listeners and factories.</summary>
    public const string LogCategory = "FtpCluster.Transport";

    /// <summary>The client's connections to gateways go through FtpCluster's TCP transport.</summary>
    /// <exception cref="InvalidOperationException">Orleans' transport registration is not the one expected.</exception>
    public static IClientBuilder UseFtpClusterTcpTransport(this IClientBuilder builder, Action<TcpTransportOptions>? configure = null)
    {
        Replace(builder.Services, configure, expectedFactories: 1, expectedListenerFactories: 0, "a client");
        return builder;
    }

    /// <summary>
    /// Whether <paramref name="services"/> has had this transport put in (by the method above, or on a silo by the
    /// silo builder's <c>UseFtpClusterTcpTransport</c> in FtpCluster.Grains).
    /// </summary>
    public static bool IsInstalled(IServiceCollection services) => services.Any(d => d.ServiceType == typeof(Installed));

    /// <summary>
    /// Replaces Orleans' keyed transport registrations in <paramref name="services"/> with this transport's, after
    /// checking that there are as many as <paramref name="host"/> (a silo or a client) registers. Internal, not
    /// private: the silo builder's overload lives with the silo hosting in FtpCluster.Grains.
    /// </summary>
    internal static void Replace(IServiceCollection services, Action<TcpTransportOptions>? configure,
        int expectedFactories, int expectedListenerFactories, string host)
    {
        var options = services.AddOptions<TcpTransportOptions>();
        if (configure is not null) options.Configure(configure);
        if (IsInstalled(services)) return;
        // Checked when the host starts, not when the first connection opens.
        options.Validate(o =>
        {
            o.Validate();
            return true;
        }).ValidateOnStart();

        var factories = KeyedRegistrations(services, typeof(IConnectionFactory));
        var listenerFactories = KeyedRegistrations(services, typeof(IConnectionListenerFactory));
        if (factories.Count != expectedFactories || listenerFactories.Count != expectedListenerFactories)
            throw new InvalidOperationException(
                $"FtpCluster's TCP transport cannot replace Orleans' socket transport on {host}: expected Orleans' keyed registrations of " +
                $"{expectedFactories} {nameof(IConnectionFactory)} and {expectedListenerFactories} {nameof(IConnectionListenerFactory)}, found " +
                $"{factories.Count} and {listenerFactories.Count}. Either something registered a transport before FtpCluster did, or this " +
                "Orleans version registers its transport differently from Orleans 10.4 (see Contracts/Hosting/Transport/TcpTransportRegistration.cs).");

        services.AddSingleton<TcpTransportStatistics>();
        services.AddSingleton<TcpConnectionFactory>();
        services.AddSingleton<TcpConnectionListenerFactory>();
        foreach (int index in factories)
            services[index] = ServiceDescriptor.KeyedSingleton<IConnectionFactory>(services[index].ServiceKey,
                (provider, _) => provider.GetRequiredService<TcpConnectionFactory>());
        foreach (int index in listenerFactories)
            services[index] = ServiceDescriptor.KeyedSingleton<IConnectionListenerFactory>(services[index].ServiceKey,
                (provider, _) => provider.GetRequiredService<TcpConnectionListenerFactory>());
        services.AddSingleton<Installed>();
    }

    /// <summary>Where in <paramref name="services"/> the keyed registrations of <paramref name="serviceType"/> are.</summary>
    private static List<int> KeyedRegistrations(IServiceCollection services, Type serviceType) =>
        [.. Enumerable.Range(0, services.Count).Where(i => services[i].ServiceType == serviceType && services[i].IsKeyedService)];

    /// <summary>Marks a service collection this transport has been put in.</summary>
    private sealed class Installed;
}
