using System.Net;
using FtpCluster.Grains.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// Three silo processes a, b, c on loopback with localhost clustering (a is the primary) and an Orleans
/// client connected through their gateways; started once per test class and killed afterwards, also
/// when starting fails half way.
/// </summary>
public class ThreeSiloCluster : IAsyncLifetime
{
    public static readonly string[] NodeNames = ["a", "b", "c"];

    private readonly List<SiloProcess> _silos = [];
    private IHost? _clientHost;

    public IReadOnlyDictionary<string, (SiloProcess Process, SiloReadyLine Ready, FtpClusterSiloOptions Options)> Nodes { get; private set; } =
        new Dictionary<string, (SiloProcess, SiloReadyLine, FtpClusterSiloOptions)>();

    public IClusterClient Client => _clientHost?.Services.GetRequiredService<IClusterClient>()
        ?? throw new InvalidOperationException("the cluster has not started");

    public string ClusterId { get; } = $"test-{Guid.NewGuid():N}";

    /// <summary>Distinct per node, so the metadata test tells the silos apart.</summary>
    protected virtual long MemoryBudget(int node) => (node + 1) * 512L * 1024 * 1024;

    public async Task InitializeAsync()
    {
        try
        {
            int[] ports = SiloProcess.FreeLoopbackPorts(2 * NodeNames.Length);
            var options = NodeNames.Select((node, i) => new FtpClusterSiloOptions
            {
                NodeName = node,
                SiloPort = ports[2 * i],
                GatewayPort = ports[2 * i + 1],
                PrimarySiloEndpoint = i == 0 ? null : $"127.0.0.1:{ports[0]}",
                ClusterId = ClusterId,
                Device = "cpu",
                Threads = 1,
                MemoryBudgetBytes = MemoryBudget(i),
                Capacity = i + 1,
            }).ToArray();

            // The primary first (the others join through it), then the rest together.
            var primary = SiloProcess.Start(options[0]);
            _silos.Add(primary);
            var readies = new List<SiloReadyLine> { await primary.WaitReadyAsync() };
            var others = options.Skip(1).Select(SiloProcess.Start).ToArray();
            _silos.AddRange(others);
            readies.AddRange(await Task.WhenAll(others.Select(s => s.WaitReadyAsync())));

            Nodes = NodeNames.Select((node, i) => (node, entry: (_silos[i], readies[i], options[i])))
                .ToDictionary(x => x.node, x => x.entry);

            _clientHost = await ConnectClientAsync(NodeNames);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    /// <summary>A started Orleans client that talks to the cluster through the named nodes' gateways only.</summary>
    public async Task<IHost> ConnectClientAsync(params string[] nodeNames)
    {
        var host = new HostBuilder()
            .ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning))
            .UseOrleansClient(client => client
                .UseStaticClustering(nodeNames.Select(n => Nodes[n].Ready.Gateway).ToArray())
                .Configure<ClusterOptions>(cluster =>
                {
                    cluster.ClusterId = ClusterId;
                    cluster.ServiceId = Nodes[nodeNames[0]].Options.ServiceId;
                }))
            .Build();
        await host.StartAsync();
        return host;
    }

    public async Task DisposeAsync()
    {
        if (_clientHost is not null)
        {
            // The silos are killed next anyway; a client that cannot say goodbye must not hold the test up.
            using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await _clientHost.StopAsync(stopping.Token);
            }
            catch (OperationCanceledException)
            {
            }
            _clientHost.Dispose();
            _clientHost = null;
        }
        foreach (var silo in _silos) silo.Dispose();
        _silos.Clear();
    }
}
