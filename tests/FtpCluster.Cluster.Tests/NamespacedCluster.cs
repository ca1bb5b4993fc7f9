using System.Net;
using FtpCluster.Client.Cluster;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Hosting.Tls;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// Three silo processes a, b, c, each in a network namespace of its own (<see cref="NamespacedNetwork"/>),
/// binding and advertising that namespace's address, with localhost clustering (a is the primary), mutual
/// TLS (addresses other than loopback need it) and an Orleans client in this process's namespace connected
/// through their gateways. Whatever a silo sends
/// to another silo or to the client crosses its one veth interface, so the kernel's counters of that
/// interface (<see cref="ReadCounters"/>) count it. Started once per test class; the silos are killed and
/// the namespaces deleted afterwards, also when starting fails half way.
/// </summary>
public class NamespacedCluster : IAsyncLifetime
{
    public static readonly string[] NodeNames = ["a", "b", "c"];

    // Every silo has its namespace's ports to itself: the defaults, the same for all.
    public const int SiloPort = 11111;
    public const int GatewayPort = 30000;

    private NamespacedNetwork? _network;
    private EmbeddedCluster? _cluster;
    private ClusterConnection? _connection;
    private string? _certificates;

    public NamespacedNetwork Network => _network ?? throw new InvalidOperationException("the cluster has not started");

    public IReadOnlyDictionary<string, EmbeddedSilo> Nodes =>
        (_cluster ?? throw new InvalidOperationException("the cluster has not started")).Silos.ToDictionary(s => s.Options.NodeName);

    public IClusterClient Client => _connection?.Client ?? throw new InvalidOperationException("the cluster has not started");

    public string ClusterId { get; } = $"test-{Guid.NewGuid():N}";

    /// <summary>The kernel's counters of every silo's interface, by node name.</summary>
    public IReadOnlyDictionary<string, InterfaceCounters> ReadCounters() => Network.ReadCounters();

    public async Task InitializeAsync()
    {
        try
        {
            _certificates = Directory.CreateTempSubdirectory("ftp-namespaced-tls-").FullName;
            ClusterCertificateFolder.Write(_certificates, NodeNames, TimeSpan.FromDays(1), overwrite: true);
            _network = NamespacedNetwork.Create(NodeNames);
            var primary = new IPEndPoint(_network.Nodes[0].Address, SiloPort);
            var options = _network.Nodes.Select((node, i) => new FtpClusterSiloOptions
            {
                NodeName = node.Name,
                SiloPort = SiloPort,
                GatewayPort = GatewayPort,
                AdvertisedAddress = node.Address.ToString(),
                Clustering = FtpClusterSiloOptions.LocalhostClustering,
                PrimarySiloEndpoint = i == 0 ? null : primary.ToString(),
                ClusterId = ClusterId,
                Device = "cpu",
                Threads = 1,
                MemoryBudgetBytes = 1L << 30,
                ModelRoots = TestModelRoots.All,
                ParentProcessId = Environment.ProcessId,
                TlsFolder = _certificates,
            }).ToArray();
            var network = _network;
            _cluster = await EmbeddedCluster.StartAsync(options, launcher: silo => network.Node(silo.NodeName).Launcher);
            foreach (var silo in _cluster.Silos)
                Assert.Equal(new IPEndPoint(network.Node(silo.Options.NodeName).Address, GatewayPort), silo.Ready.Gateway);
            _connection = await ClusterConnection.ConnectAsync(_cluster.Gateways, ClusterId,
                tls: TlsCredentials.Load(TlsFiles.InFolder(_certificates, TlsFiles.ClientName), ClusterCertificateRole.Client));
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
        // The silos first: a namespace with a process still in it outlives its deletion.
        _cluster?.Dispose();
        _cluster = null;
        _network?.Dispose();
        _network = null;
        if (_certificates is not null) Directory.Delete(_certificates, recursive: true);
        _certificates = null;
    }
}
