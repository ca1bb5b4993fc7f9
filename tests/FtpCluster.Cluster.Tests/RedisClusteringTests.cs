using System.Diagnostics;
using System.Net;
using FtpCluster.Client.Cluster;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Hosting.Transport;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Placement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;

namespace FtpCluster.Cluster.Tests;

/// <summary>Production clustering: two silo processes and a client find each other through a private redis-server.</summary>
public sealed class RedisClusteringTests
{
    private static readonly string[] NodeNames = ["r1", "r2"];

    [RedisServerFact]
    public async Task Silos_with_redis_clustering_see_each_other()
    {
        using var redis = await RedisServer.StartAsync();
        using (var silos = new RedisSilos(redis, NodeNames))
        {
            var readies = await silos.WaitReadyAsync();

            await using var client = await silos.ConnectAsync(redis);
            var grains = client.Grains;

            var nodes = await grains.GetGrain<IClusterNodesGrain>(0).GetActiveNodes();
            Assert.Equal(NodeNames, nodes.Select(n => n.NodeName));
            for (int i = 0; i < NodeNames.Length; i++)
            {
                var info = await grains.GetGrain<ISiloInfoGrain>(NodePinnedKey.Create("probe", NodeNames[i])).GetInfo();
                Assert.Equal(silos.Processes[i].ProcessId, info.ProcessId);
                Assert.Equal(readies[i].Silo, info.Silo.Endpoint);
            }
        }
    }
}

/// <summary>
/// Production clustering keeps each deployment (request and current plan) in Redis as well: when the
/// silo holding the coordinator dies, the next call starts a new coordinator on a survivor that resumes
/// the stored plan (re-planning if a stage was on the dead silo too) instead of starting empty.
/// </summary>
public sealed class RedisDeploymentTests
{
    private static readonly string[] NodeNames = ["r1", "r2", "r3"];

    [RedisServerAndSharedModelsFact]
    public async Task A_deployment_outlives_the_silo_of_its_coordinator()
    {
        string model = Compute.Tests.SharedModels.PathTo("stories260K", "stories260K.bin");
        using var redis = await RedisServer.StartAsync();
        using (var silos = new RedisSilos(redis, NodeNames))
        {
            await silos.WaitReadyAsync();
            await using var client = await silos.ConnectAsync(redis);
            var grains = client.Grains;

            string deployment = $"durable-{Guid.NewGuid():N}";
            var coordinator = grains.GetGrain<ICoordinatorGrain>(deployment);
            var planned = await coordinator.Deploy(new DeploymentRequest(model, Stages: 2));
            var request = new GenerationRequest([1, 461, 401], MaxTokens: 30, StopTokens: []);
            var before = await coordinator.Generate(request);

            string home = await coordinator.NodeName();
            silos.Kill(home);
            // Once the survivors have declared it dead, a call finds no activation and starts a new one. The
            // client may have used the dead silo as its gateway: a call it sent there is refused, and it
            // moves to another gateway, so a refused call is tried again.
            var retry = new SiloLossRetry(TimeSpan.FromMinutes(2));
            while ((await retry.Call(() => grains.GetGrain<IClusterNodesGrain>(0).GetActiveNodes())).Any(n => n.NodeName == home))
            {
                Assert.False(retry.Expired, $"silo {home} was never declared dead");
                await Task.Delay(200);
            }

            var after = await retry.Call(() => coordinator.Generate(request)).WaitAsync(TimeSpan.FromMinutes(2));
            Assert.NotEqual(home, await retry.Call(coordinator.NodeName));
            Assert.Equal(before.Ids, after.Ids);
            // The plan came from storage: the same split, or (if a stage was on the dead silo) a re-plan of it.
            // The stage grains may be new ones (placed again): their directory entries can die with the silo.
            Assert.DoesNotContain(home, after.Stages.Select(s => s.NodeName));
            if (!planned.Any(s => s.NodeName == home))
                Assert.Equal(planned.Select(s => (s.NodeName, s.FirstLayer, s.EndLayer)), after.Stages.Select(s => (s.NodeName, s.FirstLayer, s.EndLayer)));
        }
    }
}

/// <summary>Silo processes with Redis clustering and storage, one per node name, on free loopback ports; killed when disposed.</summary>
public sealed class RedisSilos : IDisposable
{
    private readonly SiloProcess[] _silos;

    public RedisSilos(RedisServer redis, params string[] nodeNames) : this(redis, configure: null, nodeNames)
    {
    }

    /// <param name="configure">Changes each silo's options before it starts.</param>
    public RedisSilos(RedisServer redis, Action<FtpClusterSiloOptions>? configure, params string[] nodeNames)
    {
        NodeNames = nodeNames;
        int[] ports = SiloProcess.FreeLoopbackPorts(2 * nodeNames.Length);
        Options = [.. nodeNames.Select((node, i) => new FtpClusterSiloOptions
        {
            NodeName = node, SiloPort = ports[2 * i], GatewayPort = ports[2 * i + 1],
            Clustering = FtpClusterSiloOptions.RedisClustering, RedisConnectionString = redis.ConnectionString,
            ClusterId = ClusterId, Threads = 1, MemoryBudgetBytes = 256L * 1024 * 1024, ModelRoots = TestModelRoots.All,
        })];
        foreach (var options in Options) configure?.Invoke(options);
        _silos = [.. Options.Select(SiloProcess.Start)];
    }

    public string ClusterId { get; } = $"test-{Guid.NewGuid():N}";

    public string[] NodeNames { get; }

    public FtpClusterSiloOptions[] Options { get; }

    public IReadOnlyList<SiloProcess> Processes => _silos;

    public Task<SiloReadyLine[]> WaitReadyAsync() => Task.WhenAll(_silos.Select(s => s.WaitReadyAsync()));

    /// <summary>Kills the named node's silo process.</summary>
    public void Kill(string node) => _silos[Array.IndexOf(NodeNames, node)].Dispose();

    public Task<RedisClusterClient> ConnectAsync(RedisServer redis) => RedisClusterClient.ConnectAsync(redis, ClusterId, Options[0].ServiceId);

    public void Dispose()
    {
        foreach (var silo in _silos) silo.Dispose();
    }
}

/// <summary>
/// Calls again a call that failed because a silo is gone, until a deadline: after a silo dies, the client may still
/// use it as its gateway, and the cluster takes a while to declare it dead and move what it hosted.
/// </summary>
public sealed class SiloLossRetry(TimeSpan patience)
{
    private readonly DateTime _deadline = DateTime.UtcNow + patience;

    public bool Expired => DateTime.UtcNow >= _deadline;

    public async Task<T> Call<T>(Func<Task<T>> call)
    {
        while (true)
        {
            try
            {
                return await call();
            }
            catch (Exception e) when (ClusterFailures.IsSiloLoss(e) && !Expired)
            {
                await Task.Delay(200);
            }
        }
    }
}

/// <summary>An Orleans client that finds the cluster's gateways through Redis, stopped (within 5 s) when disposed.</summary>
public sealed class RedisClusterClient : IAsyncDisposable
{
    private readonly IHost _host;

    private RedisClusterClient(IHost host) => _host = host;

    public IClusterClient Grains => _host.Services.GetRequiredService<IClusterClient>();

    public static async Task<RedisClusterClient> ConnectAsync(RedisServer redis, string clusterId, string serviceId)
    {
        var host = new HostBuilder()
            .ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning))
            .UseOrleansClient(c => c
                .UseRedisClustering(redis.ConnectionString)
                .Configure<ClusterOptions>(cluster => (cluster.ClusterId, cluster.ServiceId) = (clusterId, serviceId))
                .Configure<Orleans.Serialization.ExceptionSerializationOptions>(exceptions =>
                    exceptions.SupportedNamespacePrefixes.Add(ClusterFailures.OrleansRetriesNamespace))
                .UseFtpClusterTcpTransport())
            .Build();
        await host.StartAsync();
        return new RedisClusterClient(host);
    }

    public async ValueTask DisposeAsync()
    {
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _host.StopAsync(stopping.Token);
        }
        catch (OperationCanceledException)
        {
            // A silo of the test is gone: the client's goodbye may find no one to say it to.
        }
        _host.Dispose();
    }
}

/// <summary>A fact that is skipped, saying why, when <c>redis-server</c> is not on PATH.</summary>
public sealed class RedisServerFactAttribute : FactAttribute
{
    public RedisServerFactAttribute()
    {
        if (RedisServer.Executable is null)
            Skip = "redis-server is not on PATH (Debian: apt-get install -y redis-server); redis clustering is not tested";
    }
}

/// <summary>A redis fact that runs a test model, so it also needs ../shared.</summary>
public sealed class RedisServerAndSharedModelsFactAttribute : FactAttribute
{
    public RedisServerAndSharedModelsFactAttribute()
    {
        Skip = new RedisServerFactAttribute().Skip ?? new Compute.Tests.SharedModelsFactAttribute().Skip;
    }
}

/// <summary>A redis theory that runs a test model, so it also needs ../shared.</summary>
public sealed class RedisServerAndSharedModelsTheoryAttribute : TheoryAttribute
{
    public RedisServerAndSharedModelsTheoryAttribute()
    {
        Skip = new RedisServerFactAttribute().Skip ?? new Compute.Tests.SharedModelsFactAttribute().Skip;
    }
}

/// <summary>
/// A throw-away redis-server in its own temp directory, on a free loopback port or on a given address. By default it
/// persists nothing; with <c>durable</c> it keeps an append-only file synced on every write, so that
/// <see cref="KillAndRestartAsync"/> brings back everything it acknowledged, as a production Redis does.
/// </summary>
public sealed class RedisServer : IDisposable
{
    public static string? Executable { get; } =
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "redis-server"))
            .FirstOrDefault(File.Exists);

    private readonly string _directory;
    private readonly string[] _args;
    private Process _process;

    private RedisServer(string directory, string[] args, string connectionString, Process process)
    {
        (_directory, _args, ConnectionString, _process) = (directory, args, connectionString, process);
    }

    public string ConnectionString { get; }

    public int ProcessId => _process.Id;

    public static Task<RedisServer> StartAsync() => StartAsync(IPAddress.Loopback, SiloProcess.FreeLoopbackPorts(1)[0], durable: false);

    /// <param name="bind">The address it listens on (a test network's host address, say); the network is the test's alone, so protected mode is off.</param>
    /// <param name="durable">Keeps an append-only file, synced on every write, that a restart reads back.</param>
    public static async Task<RedisServer> StartAsync(IPAddress bind, int port, bool durable)
    {
        string directory = Directory.CreateTempSubdirectory("ftpcluster-redis-").FullName;
        string[] args = ["--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", bind.ToString(),
            "--protected-mode", "no", "--save", "", "--dir", directory,
            .. (durable ? new[] { "--appendonly", "yes", "--appendfsync", "always" } : ["--appendonly", "no"])];
        var server = new RedisServer(directory, args, $"{bind}:{port}", Launch(directory, args, out var ready));
        try
        {
            await ready.WaitAsync(SiloProcess.StartTimeout);
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    /// <summary>
    /// SIGKILL, then, <paramref name="downtime"/> later, the same server started again on the same port and files;
    /// completes when it accepts connections.
    /// </summary>
    public async Task KillAndRestartAsync(TimeSpan downtime)
    {
        Stop();
        await Task.Delay(downtime);
        _process = Launch(_directory, _args, out var ready);
        await ready.WaitAsync(SiloProcess.StartTimeout);
    }

    private static Process Launch(string directory, string[] args, out Task ready)
    {
        var start = new ProcessStartInfo(Executable ?? throw new InvalidOperationException("redis-server is not on PATH"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        foreach (var arg in args) start.ArgumentList.Add(arg);

        var readyLine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            output.Enqueue(e.Data);
            if (e.Data.Contains("Ready to accept connections", StringComparison.Ordinal)) readyLine.TrySetResult();
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) output.Enqueue(e.Data); };
        process.Exited += (_, _) => readyLine.TrySetException(new InvalidOperationException(
            $"redis-server exited before it was ready:{Environment.NewLine}{string.Join(Environment.NewLine, output)}"));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        ready = readyLine.Task;
        return process;
    }

    private void Stop()
    {
        try
        {
            if (!_process.HasExited) _process.Kill();
            _process.WaitForExit();
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }

    public void Dispose()
    {
        Stop();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
