using System.Diagnostics;
using System.Globalization;
using System.Net;
using FtpCluster.Client.Cluster;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Hosting.Tls;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Placement;

namespace FtpCluster.Cluster.Tests.Chaos;

/// <summary>
/// Silo processes a, b, c with Redis clustering and storage, built to be hurt: each silo can be killed (SIGKILL),
/// stopped (SIGTERM), restarted under its node name, and, when the silos run in network namespaces of their own
/// (<see cref="NamespacedNetwork"/>, where the machine allows it), cut off from the network and joined again. Redis is
/// durable (an append-only file synced on every write) and can be killed and restarted. The silos and clients use mutual
/// TLS, as a cluster on a network must. Everything it started is killed when it is disposed, also when starting fails
/// half way.
/// </summary>
public sealed class ChaosCluster : IDisposable
{
    public static readonly string[] NodeNames = ["a", "b", "c"];

    // In namespaces every silo has its namespace's ports to itself.
    private const int NamespacedSiloPort = 11111;
    private const int NamespacedGatewayPort = 30000;
    private const int NamespacedRedisPort = 6379;

    private readonly NamespacedNetwork? _network;
    private readonly Dictionary<string, SiloProcess> _silos = new(StringComparer.Ordinal);
    private readonly string _certificates = Directory.CreateTempSubdirectory("ftp-chaos-tls-").FullName;
    private RedisServer? _redis;

    private ChaosCluster(NamespacedNetwork? network)
    {
        _network = network;
        ClusterCertificateFolder.Write(_certificates, NodeNames, TimeSpan.FromDays(1), overwrite: true);
    }

    /// <summary>Whether each silo runs in a network namespace of its own (so it can be partitioned).</summary>
    public bool Namespaced => _network is not null;

    public RedisServer Redis => _redis ?? throw new InvalidOperationException("the cluster has not started");

    public string ClusterId { get; } = $"chaos-{Guid.NewGuid():N}";

    /// <summary>Each node's options, as its silo is started (and restarted).</summary>
    public IReadOnlyDictionary<string, FtpClusterSiloOptions> Options { get; private set; } = new Dictionary<string, FtpClusterSiloOptions>();

    public SiloProcess Silo(string node) => _silos[node];

    /// <summary>Starts Redis and the three silos; in namespaces when <paramref name="namespaced"/>, else on loopback ports.</summary>
    public static async Task<ChaosCluster> StartAsync(bool namespaced)
    {
        var cluster = new ChaosCluster(namespaced ? NamespacedNetwork.Create(NodeNames) : null);
        try
        {
            await cluster.StartAllAsync();
            return cluster;
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
    }

    private async Task StartAllAsync()
    {
        if (_network is { } network)
        {
            _redis = await RedisServer.StartAsync(network.HostAddress, NamespacedRedisPort, durable: true);
            Options = NodeNames.ToDictionary(n => n, n => NodeOptions(n, network.Node(n).Address.ToString(), NamespacedSiloPort, NamespacedGatewayPort));
        }
        else
        {
            _redis = await RedisServer.StartAsync(IPAddress.Loopback, SiloProcess.FreeLoopbackPorts(1)[0], durable: true);
            int[] ports = SiloProcess.FreeLoopbackPorts(2 * NodeNames.Length);
            Options = NodeNames.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => NodeOptions(p.n, "127.0.0.1", ports[2 * p.i], ports[2 * p.i + 1]));
        }
        foreach (string node in NodeNames) _silos[node] = Launch(node);
        await Task.WhenAll(_silos.Values.Select(s => s.WaitReadyAsync()));
    }

    private FtpClusterSiloOptions NodeOptions(string node, string address, int siloPort, int gatewayPort) => new()
    {
        NodeName = node, AdvertisedAddress = address, SiloPort = siloPort, GatewayPort = gatewayPort,
        Clustering = FtpClusterSiloOptions.RedisClustering, RedisConnectionString = _redis!.ConnectionString,
        ClusterId = ClusterId, Device = "cpu", Threads = 1, MemoryBudgetBytes = 256L * 1024 * 1024,
        ModelRoots = TestModelRoots.All, TlsFolder = _certificates,
        // A test run that is killed takes its silos with it.
        ParentProcessId = Environment.ProcessId,
    };

    private SiloProcess Launch(string node) => _network is { } network
        ? SiloProcess.StartUnder(network.Node(node).Launcher, Options[node])
        : SiloProcess.Start(Options[node]);

    /// <summary>A client whose gateways are the named nodes' (a victim left out, its calls never wait on a dead gateway).</summary>
    public Task<ClusterConnection> ConnectAsync(params string[] nodes) => ClusterConnection.ConnectAsync(
        [.. nodes.Select(n => new IPEndPoint(IPAddress.Parse(Options[n].AdvertisedAddress), Options[n].GatewayPort))], ClusterId,
        tls: TlsCredentials.Load(TlsFiles.InFolder(_certificates, TlsFiles.ClientName), ClusterCertificateRole.Client));

    /// <summary>SIGKILL: the silo gets no chance to say goodbye.</summary>
    public void Kill(string node) => _silos[node].Dispose();

    /// <summary>SIGTERM, what a service manager sends; completes when the silo has exited.</summary>
    public async Task TerminateAsync(string node)
    {
        using (var kill = Process.Start("kill", ["-TERM", _silos[node].ProcessId.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
            Assert.Equal(0, kill.ExitCode);
        }
        await _silos[node].WaitExitAsync();
    }

    /// <summary>A new silo process (a new incarnation) under the node's name, address and ports, once the old one has gone.</summary>
    public async Task RestartAsync(string node)
    {
        _silos[node].Dispose();
        _silos[node] = Launch(node);
        await _silos[node].WaitReadyAsync();
    }

    /// <summary>The network namespace the node's silo runs in.</summary>
    public string Namespace(string node) =>
        (_network ?? throw new InvalidOperationException("the silos do not run in network namespaces")).Node(node).Namespace;

    /// <summary>
    /// After a partition heals: a silo the membership declared dead meanwhile stops itself once it reads so (Orleans),
    /// and comes back as a new process, as a service manager would bring it; one that was not declared dead just goes
    /// on. Completes when the membership lists the node as active again, saying which of the two happened.
    /// </summary>
    public async Task<string> RejoinAsync(IClusterClient client, string node)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        bool restarted = false;
        while (true)
        {
            if (_silos[node].Exited.IsCompleted)
            {
                await RestartAsync(node);
                restarted = true;
            }
            try
            {
                var active = await client.GetGrain<IClusterNodesGrain>(0).GetActiveNodes();
                if (active.Any(n => n.NodeName == node) && (await InfoAsync(client, node)).ProcessId == _silos[node].ProcessId)
                    return restarted ? $"{node} declared dead, stopped itself on healing, restarted and rejoined" : $"{node} rejoined without a restart";
            }
            catch (Exception e) when (ClusterFailures.IsSiloLoss(e))
            {
            }
            Assert.True(DateTime.UtcNow < deadline,
                $"node {node} is not active a minute after its partition healed:{Environment.NewLine}{_silos[node].Output}{Environment.NewLine}" +
                $"{RedisFrom(node)}{Environment.NewLine}{_network?.Describe()}");
            await Task.Delay(200);
        }
    }

    /// <summary>
    /// What a new redis-cli in the node's namespace gets from Redis: PONG when the network healed, so that a silo still
    /// failing to reach Redis has a client that did not reconnect.
    /// </summary>
    private string RedisFrom(string node)
    {
        string[] hostAndPort = Redis.ConnectionString.Split(',')[0].Split(':');
        try
        {
            string answer = IpCommand.Run("netns", "exec", Namespace(node), "timeout", "3", "redis-cli", "-h", hostAndPort[0], "-p", hostAndPort[1], "ping");
            return $"redis-cli ping from {node}'s namespace: {answer.Trim()}";
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return $"redis-cli ping from {node}'s namespace failed: {e.Message}";
        }
    }

    /// <summary>Takes the node's only link down: it reaches neither the other silos, nor Redis, nor clients.</summary>
    public void Partition(string node) => SetLink(node, "down");

    /// <summary>Brings the node's link back up.</summary>
    public void Heal(string node) => SetLink(node, "up");

    private void SetLink(string node, string state)
    {
        var network = _network ?? throw new InvalidOperationException("partitions need the silos in network namespaces");
        IpCommand.Run("-n", network.Node(node).Namespace, "link", "set", NetworkNode.Interface, state);
    }

    /// <summary>What the node's silo says about itself (the stages it holds, among the rest).</summary>
    public static Task<SiloInfo> InfoAsync(IClusterClient client, string node) =>
        client.GetGrain<ISiloInfoGrain>(NodePinnedKey.Create("chaos-probe", node)).GetInfo();

    public void Dispose()
    {
        // The silos first: a namespace with a process still in it outlives its deletion.
        foreach (var silo in _silos.Values) silo.Dispose();
        _silos.Clear();
        _redis?.Dispose();
        _redis = null;
        _network?.Dispose();
        Directory.Delete(_certificates, recursive: true);
    }
}
