using System.Collections.Concurrent;
using System.Diagnostics;
using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Hosting.Tls;
using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// Two silo processes a and b on loopback with mutual TLS (certificates made by <see cref="ClusterCertificateFolder"/>,
/// as <c>cluster certs</c> makes them), a client with the cluster's client certificate, and every line the silos print,
/// which the tests wait on for the lines that say why a connection was refused.
/// </summary>
public sealed class TlsCluster : IAsyncLifetime
{
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Found)> _awaited = [];
    private EmbeddedCluster? _cluster;
    private ClusterConnection? _connection;

    /// <summary>Where the cluster's certificates are (and other clusters' certificates that tests make).</summary>
    public string Folder { get; } = Directory.CreateTempSubdirectory("ftp-tls-cluster-").FullName;

    public string Certificates => Path.Combine(Folder, "cluster");

    public string ClusterId { get; } = $"test-{Guid.NewGuid():N}";

    public EmbeddedCluster Silos => _cluster ?? throw new InvalidOperationException("the cluster has not started");

    public IClusterClient Client => _connection?.Client ?? throw new InvalidOperationException("the cluster has not started");

    public async Task InitializeAsync()
    {
        ClusterCertificateFolder.Write(Certificates, ["a", "b"], TimeSpan.FromDays(1), overwrite: false);
        var options = EmbeddedCluster.LocalSiloOptions(2, ClusterId);
        foreach (var silo in options)
        {
            silo.Threads = 1;
            silo.MemoryBudgetBytes = 1L << 30;
            silo.TlsFolder = Certificates;
            silo.ModelRoots = TestModelRoots.All;
        }
        _cluster = await EmbeddedCluster.StartAsync(options, onOutput: (node, line) => Heard($"[{node}] {line}"));
        try
        {
            _connection = await ClusterConnection.ConnectAsync(Silos.Gateways, ClusterId,
                tls: TlsCredentials.Load(TlsFiles.InFolder(Certificates, TlsFiles.ClientName), ClusterCertificateRole.Client));
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    /// <summary>How many lines the silos have printed so far.</summary>
    public int LineCount
    {
        get
        {
            lock (_awaited) return _lines.Count;
        }
    }

    /// <summary>
    /// The first line a silo prints (or printed, after the first <paramref name="skip"/>) that <paramref name="match"/>
    /// accepts, within <paramref name="bound"/>.
    /// </summary>
    public Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan bound, int skip = 0)
    {
        var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_awaited)
        {
            if (_lines.Skip(skip).FirstOrDefault(match) is { } line) return Task.FromResult(line);
            _awaited.Add((match, found));
        }
        return found.Task.WaitAsync(bound);
    }

    private void Heard(string line)
    {
        lock (_awaited)
        {
            _lines.Enqueue(line);
            foreach (var (match, found) in _awaited)
                if (match(line)) found.TrySetResult(line);
        }
    }

    public async Task DisposeAsync()
    {
        if (_connection is not null) await _connection.DisposeAsync();
        _connection = null;
        _cluster?.Dispose();
        _cluster = null;
        Directory.Delete(Folder, recursive: true);
    }
}

/// <summary>
/// Mutual TLS between silo processes and from clients: the cluster's own certificates work end to end, and a process
/// without a certificate of the cluster can neither join nor call, and is refused within seconds, both sides saying why.
/// </summary>
public sealed class TlsClusterTests(TlsCluster cluster) : IClassFixture<TlsCluster>
{
    /// <summary>A bound on every wait for a refusal, not a delay: a handshake gives up after 10 s, a refused client retries never.</summary>
    private static readonly TimeSpan RefusalBound = TimeSpan.FromSeconds(30);

    private static string ModelPath => SharedModels.PathTo("stories260K", "stories260K.bin");

    /// <summary>Certificates of another cluster: another CA, its own node and client certificates.</summary>
    private string OtherCluster(params string[] nodes)
    {
        string folder = Path.Combine(cluster.Folder, $"other-{Guid.NewGuid():N}");
        ClusterCertificateFolder.Write(folder, nodes.Length == 0 ? ["x"] : nodes, TimeSpan.FromDays(1), overwrite: false);
        return folder;
    }


    /// <summary>
    /// The pipeline over TLS gives what it gives without TLS: the single process's logits (which the plain pipeline
    /// matches, PipelineTests) and the golden greedy tokens.
    /// </summary>
    [SharedModelsFact]
    public async Task A_TLS_cluster_runs_a_pipeline_and_gives_the_same_output_as_without_TLS()
    {
        var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>($"tls-{Guid.NewGuid():N}");
        var stages = await coordinator.Deploy(new DeploymentRequest(ModelPath, Stages: 2));
        Assert.Equal(["a", "b"], stages.Select(s => s.NodeName));
        int[] ids = [1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435];

        var scored = (await coordinator.Score(ids)).LogitValues();
        using var device = new CpuDevice(1);
        using var model = TransformerStage.Load(ModelPath, device);
        Assert.Equal(Generator.AllLogits(model, ids), scored);
        var golden = SharedModels.Golden.GetProperty("stories260K").GetProperty("greedy_from_bos_64_steps").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var generated = await coordinator.Generate(new GenerationRequest([1], MaxTokens: golden.Length - 1, StopTokens: [1]));
        Assert.Equal(golden, generated.Ids);
        await coordinator.Unload();
    }

    [Fact]
    public async Task A_client_without_a_certificate_is_refused_within_seconds_and_told_to_give_one()
    {
        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ClusterConnection.ConnectAsync(cluster.Silos.Gateways, cluster.ClusterId));

        Assert.True(clock.Elapsed < RefusalBound, $"refused after {clock.Elapsed}");
        Assert.Contains($"the gateway at {cluster.Silos.Gateways[0]}: it closed the connection without answering a word: it requires TLS, " +
            "and this client has no certificate (give --tls DIR, or --tls-ca, --tls-cert and --tls-key)", error.Message, StringComparison.Ordinal);
        await cluster.WaitForLineAsync(line => line.Contains("on the gateway port: the TLS handshake failed: the peer sent no certificate", StringComparison.Ordinal), RefusalBound);
    }

    [Fact]
    public async Task A_client_of_another_cluster_is_refused_within_seconds_naming_the_gateways_certificate()
    {
        string other = OtherCluster();
        var tls = TlsCredentials.Load(TlsFiles.InFolder(other, TlsFiles.ClientName), ClusterCertificateRole.Client);

        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ClusterConnection.ConnectAsync(cluster.Silos.Gateways, cluster.ClusterId, tls: tls));

        Assert.True(clock.Elapsed < RefusalBound, $"refused after {clock.Elapsed}");
        Assert.Contains(": TLS: the gateway at ", error.Message, StringComparison.Ordinal);
        Assert.Contains($"the gateway at {cluster.Silos.Gateways[0]}: its certificate 'CN=a, O=FtpCluster' (issued by '", error.Message, StringComparison.Ordinal);
        Assert.Contains($"is not issued by the cluster CA ('{tls.Authorities[0].Subject}')", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_certificate_the_cluster_did_not_issue_is_refused_by_the_gateway_which_logs_whose_it_was()
    {
        // It trusts this cluster's CA besides its own, so the gateways pass its check: the gateways' check is the one that refuses.
        string other = OtherCluster();
        string bundle = Path.Combine(other, "both-cas.pem");
        await File.WriteAllTextAsync(bundle, await File.ReadAllTextAsync(Path.Combine(other, "ca.pem")) + await File.ReadAllTextAsync(Path.Combine(cluster.Certificates, "ca.pem")));
        var tls = TlsCredentials.Load(new TlsFiles(bundle, Path.Combine(other, "client.pem"), Path.Combine(other, "client.key")), ClusterCertificateRole.Client);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ClusterConnection.ConnectAsync(cluster.Silos.Gateways, cluster.ClusterId, tls: tls));

        Assert.Contains("refused this process's certificate 'CN=client, O=FtpCluster'", error.Message, StringComparison.Ordinal);
        string refusal = await cluster.WaitForLineAsync(line => line.Contains(
            $"on the gateway port: its certificate 'CN=client, O=FtpCluster' (issued by '{tls.Certificate.Issuer}') is not issued by the cluster CA", StringComparison.Ordinal), RefusalBound);
        Assert.Contains("TLS: refused a connection from 127.0.0.1:", refusal, StringComparison.Ordinal);
    }

    /// <summary>A silo process without TLS, or with another cluster's node certificate, asks the primary to let it join.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_silo_without_a_certificate_of_the_cluster_cannot_join_and_both_sides_say_why(bool otherClustersCertificate)
    {
        string node = otherClustersCertificate ? "foreign" : "plain";
        int[] ports = SiloProcess.FreeLoopbackPorts(2);
        var primary = cluster.Silos.Silos[0];
        var intruder = new FtpClusterSiloOptions
        {
            NodeName = node, SiloPort = ports[0], GatewayPort = ports[1], ClusterId = cluster.ClusterId, Threads = 1, MemoryBudgetBytes = 1L << 30,
            PrimarySiloEndpoint = primary.Ready.Silo.ToString(), ParentProcessId = Environment.ProcessId,
            TlsFolder = otherClustersCertificate ? OtherCluster(node) : null,
        };
        var intruderRefused = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        int linesBefore = cluster.LineCount;
        using var process = SiloProcess.Start(intruder, line =>
        {
            if (line.Contains($"TLS: cannot connect to {primary.Ready.Silo} (silo)", StringComparison.Ordinal)) intruderRefused.TrySetResult(line);
        });

        string refusal = await cluster.WaitForLineAsync(line => line.StartsWith("[a] ", StringComparison.Ordinal)
            && line.Contains("on the silo port: ", StringComparison.Ordinal), RefusalBound, skip: linesBefore);
        Assert.Contains("TLS: refused a connection from 127.0.0.1:", refusal, StringComparison.Ordinal);
        if (otherClustersCertificate)
            Assert.Contains("its certificate 'CN=a, O=FtpCluster' (issued by '", await intruderRefused.Task.WaitAsync(RefusalBound), StringComparison.Ordinal);

        var nodes = await cluster.Client.GetGrain<IClusterNodesGrain>(0).GetActiveNodes();
        Assert.Equal(["a", "b"], nodes.Select(n => n.NodeName).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(SiloReadyLine.Prefix, process.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_silo_given_the_clients_certificate_refuses_to_start_naming_the_file()
    {
        int[] ports = SiloProcess.FreeLoopbackPorts(2);
        string certificate = Path.Combine(cluster.Certificates, "client.pem");
        using var silo = SiloProcess.Start(["--node-name", "c", "--silo-port", $"{ports[0]}", "--gateway-port", $"{ports[1]}",
            "--tls-ca", Path.Combine(cluster.Certificates, "ca.pem"), "--tls-cert", certificate, "--tls-key", Path.Combine(cluster.Certificates, "client.key")]);

        Assert.Equal(2, await silo.WaitExitAsync());
        string line = Assert.Single(silo.ErrorLines);
        Assert.StartsWith($"ftpcluster-silo: node c: TLS: {certificate}: certificate 'CN=client, O=FtpCluster'", line, StringComparison.Ordinal);
        Assert.Contains("is not a node certificate of the cluster: it lacks the key usage Server Authentication", line, StringComparison.Ordinal);
    }
}
