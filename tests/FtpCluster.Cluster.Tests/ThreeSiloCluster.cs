using FtpCluster.Client.Cluster;
using FtpCluster.Grains.Hosting;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// Three silo processes a, b, c on loopback with localhost clustering (a is the primary) and an Orleans
/// client connected through their gateways, started the way the command line's embedded cluster starts
/// them; started once per test class and killed afterwards, also when starting fails half way.
/// </summary>
public class ThreeSiloCluster : IAsyncLifetime
{
    public static readonly string[] NodeNames = ["a", "b", "c"];

    private EmbeddedCluster? _cluster;
    private ClusterConnection? _connection;

    public IReadOnlyDictionary<string, EmbeddedSilo> Nodes =>
        (_cluster ?? throw new InvalidOperationException("the cluster has not started")).Silos.ToDictionary(s => s.Options.NodeName);

    public IClusterClient Client => _connection?.Client ?? throw new InvalidOperationException("the cluster has not started");

    public string ClusterId { get; } = $"test-{Guid.NewGuid():N}";

    /// <summary>Distinct per node, so the metadata test tells the silos apart.</summary>
    protected virtual long MemoryBudget(int node) => (node + 1) * 512L * 1024 * 1024;

    /// <summary>Uneven by default (1, 2, 3), so the planner's split by capacity shows.</summary>
    protected virtual double Capacity(int node) => node + 1;

    /// <summary>Changes the silos' options before they start (an HTTP API on one, say).</summary>
    protected virtual void Configure(FtpClusterSiloOptions[] options)
    {
    }

    /// <summary>Variables every silo process gets (OpenTelemetry's, say); null: none beyond what it inherits.</summary>
    protected virtual IReadOnlyDictionary<string, string>? SiloEnvironment() => null;

    /// <summary>A client that talks to the cluster through the named nodes' gateways only.</summary>
    public Task<ClusterConnection> ConnectClientAsync(params string[] nodeNames) =>
        ClusterConnection.ConnectAsync(nodeNames.Select(n => Nodes[n].Ready.Gateway).ToArray(), ClusterId);

    public async Task InitializeAsync()
    {
        var options = EmbeddedCluster.LocalSiloOptions(NodeNames.Length, ClusterId);
        for (int i = 0; i < options.Length; i++)
        {
            options[i].Device = "cpu";
            options[i].Threads = 1;
            options[i].MemoryBudgetBytes = MemoryBudget(i);
            options[i].Capacity = Capacity(i);
            options[i].ModelRoots = TestModelRoots.All;
        }
        Assert.Equal(NodeNames, options.Select(o => o.NodeName));
        Configure(options);
        _cluster = await EmbeddedCluster.StartAsync(options, environment: SiloEnvironment());
        try
        {
            _connection = await ClusterConnection.ConnectAsync(_cluster.Gateways, ClusterId);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (_connection is not null) await _connection.DisposeAsync();
        _connection = null;
        _cluster?.Dispose();
        _cluster = null;
    }
}

/// <summary>A <see cref="ThreeSiloCluster"/> whose silos host benchmark grains (<c>--benchmark-grains</c>), for the transport tests.</summary>
public sealed class BenchmarkCluster : ThreeSiloCluster
{
    protected override void Configure(FtpClusterSiloOptions[] options)
    {
        foreach (var silo in options) silo.BenchmarkGrains = true;
    }
}
