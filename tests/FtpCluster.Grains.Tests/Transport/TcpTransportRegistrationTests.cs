using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Hosting.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace FtpCluster.Grains.Tests.Transport;

/// <summary>
/// The transport takes the place of Orleans' own under Orleans' keys, on silos and clients, and refuses loudly
/// when Orleans' registrations are not there to be replaced.
/// </summary>
public sealed class TcpTransportRegistrationTests
{
    /// <summary>Every keyed transport registration, resolved under its own (Orleans-internal) key.</summary>
    private static List<object> ResolveKeyedTransports(IServiceCollection services)
    {
        var keyed = services
            .Where(d => d.IsKeyedService && (d.ServiceType == typeof(IConnectionFactory) || d.ServiceType == typeof(IConnectionListenerFactory)))
            .ToArray();
        using var provider = services.BuildServiceProvider();
        return [.. keyed.Select(d => provider.GetRequiredKeyedService(d.ServiceType, d.ServiceKey))];
    }

    [Fact]
    public void An_FtpCluster_silo_connects_listens_and_serves_its_gateway_through_the_FtpCluster_transport()
    {
        var services = new ServiceCollection();

        services.AddOrleans(silo => silo.AddFtpCluster(new FtpClusterSiloOptions { NodeName = "a" }));

        var transports = ResolveKeyedTransports(services);
        Assert.Equal(3, transports.Count); // silo connections out, the silo listener, the gateway listener
        Assert.Single(transports.OfType<TcpConnectionFactory>());
        Assert.Equal(2, transports.OfType<TcpConnectionListenerFactory>().Count());
        Assert.True(TcpTransportRegistration.IsInstalled(services));
    }

    [Fact]
    public void A_client_connects_to_gateways_through_the_FtpCluster_transport()
    {
        var services = new ServiceCollection();

        services.AddOrleansClient(client => client.UseFtpClusterTcpTransport());

        Assert.IsType<TcpConnectionFactory>(Assert.Single(ResolveKeyedTransports(services)));
    }

    [Fact]
    public void Putting_the_transport_in_twice_changes_nothing_the_second_time()
    {
        var services = new ServiceCollection();

        services.AddOrleans(silo => silo.UseFtpClusterTcpTransport().UseFtpClusterTcpTransport(o => o.ReceiveSegmentBytes = 1 << 20));

        Assert.Equal(3, ResolveKeyedTransports(services).Count);
        Assert.Single(services, d => d.ServiceType == typeof(TcpConnectionFactory));
        using var provider = services.BuildServiceProvider();
        Assert.Equal(1 << 20, provider.GetRequiredService<Microsoft.Extensions.Options.IOptions<TcpTransportOptions>>().Value.ReceiveSegmentBytes);
    }

    [Fact]
    public void Without_Orleans_transport_registrations_to_replace_the_transport_refuses_with_the_reason()
    {
        var builder = new BareSiloBuilder();

        var error = Assert.Throws<InvalidOperationException>(() => builder.UseFtpClusterTcpTransport());

        Assert.StartsWith(
            "FtpCluster's TCP transport cannot replace Orleans' socket transport on a silo: expected Orleans' keyed registrations of " +
            "1 IConnectionFactory and 2 IConnectionListenerFactory, found 0 and 0.", error.Message, StringComparison.Ordinal);
        Assert.False(TcpTransportRegistration.IsInstalled(builder.Services));
    }

    [Fact]
    public void Invalid_options_are_refused_naming_the_setting()
    {
        var error = Assert.Throws<ArgumentException>(() => new TcpTransportOptions { ReceiveSegmentBytes = 1024 }.Validate());

        Assert.Equal("ReceiveSegmentBytes must be between 4 KiB and 64 MiB, got 1024", error.Message);
    }

    /// <summary>A silo builder over a service collection Orleans' defaults were never added to.</summary>
    private sealed class BareSiloBuilder : ISiloBuilder
    {
        public IServiceCollection Services { get; } = new ServiceCollection();

        public IConfiguration Configuration { get; } = new ConfigurationBuilder().Build();
    }
}
