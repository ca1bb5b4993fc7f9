using System.CommandLine;
using FtpCluster.Client.Cli;
using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Hub;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Hosting.Tls;
using FtpCluster.Grains.Pipeline;
using Spectre.Console;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>ftpcluster cluster up</c>: a local cluster of silo processes in the foreground until Ctrl+C or
/// SIGTERM, for other commands to use through <c>--cluster</c>; with <c>--model</c> it also deploys the
/// model, under the deployment id those commands derive for the same options.
/// </summary>
internal static class ClusterCommand
{
    private static readonly Option<int?> Silos = CliOption.OptionalInt("--silos", "N",
        "Silo processes to start (required): a, b, c, ...; a is the primary");

    private static readonly Option<int?> BasePort = CliOption.OptionalInt("--base-port", "P",
        "Silo i takes ports P+2i (silo) and P+2i+1 (gateway) (default: free ports)");

    private static readonly Option<int?> Stages = CliOption.OptionalInt("--stages", "N", "With --model: the silos the model is deployed over (default all)");

    private static readonly Option<int?> HttpPort = CliOption.OptionalInt("--http-port", "P",
        "Silo a serves the OpenAI-compatible HTTP API on port P (loopback only unless --api-key-file is given)");

    private static readonly Option<string> ApiKeyFile = CliOption.Text("--api-key-file", "FILE",
        "With --http-port: the API keys, one a line; requests must send one as 'Authorization: Bearer KEY'");

    private static readonly Option<bool> BenchmarkGrains = CliOption.Flag("--benchmark-grains",
        "The silos host benchmark grains (bench transport --cluster measures through them); off by default");

    private static readonly Option<string[]> ModelRoot = new("--model-root")
    {
        HelpName = "DIR",
        Description = "A folder the silos may load models, tokenizers and routers from; repeatable (also FTPCLUSTER_MODEL_ROOTS, a path list). " +
            "Default: the Hugging Face cache and the folders of --model, --tokenizer and --router",
    };

    private static readonly Option<string> Tls = CliOption.Text("--tls", "DIR",
        "Mutual TLS between the silos and with clients, with the certificates in DIR (nodes a, b, ... and client); made there when DIR is missing or empty");

    public static Command Create()
    {
        var up = new Command("up", """
            Starts a local cluster of silo processes in the foreground until Ctrl+C or SIGTERM, printing each silo and the gateways
            for --cluster; with --model it also deploys the model and prints the plan.
              cluster up --silos N [--base-port P] [--cluster-id ID] [--device D] [--threads N] [--http-port P [--api-key-file FILE]] [--benchmark-grains] [--model-root DIR ...]
                         [--tls DIR] [--model PATH [--tokenizer PATH] [--serve-name NAME] [--stages N] [--wire W] [--dtype D] [FTP]]
            """);
        foreach (var option in new Option[]
        {
            Silos, BasePort, ClusterOptionGroup.ClusterId, ModelOptionGroup.Device, ModelOptionGroup.Threads, HttpPort, ApiKeyFile, BenchmarkGrains, ModelRoot, Tls,
            ModelOptionGroup.Model, ModelOptionGroup.Tokenizer, ModelOptionGroup.ServeName, Stages, ClusterOptionGroup.Wire, ModelOptionGroup.DType,
        })
            up.Add(option);
        PruningOptionGroup.AddTo(up);
        up.SetAction(UpAsync);
        var deployments = new Command("deployments", "The deployments of a running cluster: model, stages, memory, what runs, last use.") { DeploymentsJson };
        ClusterOptionGroup.AddRunningTo(deployments);
        deployments.SetAction(DeploymentsAsync);
        var unload = new Command("unload", "Frees a deployment: what runs on it stops, its stages free their memory.") { DeploymentId };
        ClusterOptionGroup.AddRunningTo(unload);
        unload.SetAction(UnloadAsync);
        return new Command("cluster", "A local cluster of silo processes for other commands to use through --cluster; its deployments; its TLS certificates.")
        {
            up, deployments, unload, ClusterCertsCommand.Create(),
        };
    }

    private static readonly Argument<string> DeploymentId = new("ID") { Description = "The deployment's id, as cluster deployments lists it" };

    private static readonly Option<bool> DeploymentsJson = CliOption.Flag("--json", "One JSON array on stdout instead of a table");

    private static async Task<int> DeploymentsAsync(ParseResult parse, CancellationToken cancellation)
    {
        await using var cluster = await ClusterOptionGroup.ConnectToRunningAsync(parse, cancellation);
        var ids = await cluster.Client.GetGrain<IDeploymentListGrain>(0).Ids().WaitAsync(cancellation);
        var deployments = (await Task.WhenAll(ids.Select(id => cluster.Client.GetGrain<ICoordinatorGrain>(id).Describe().WaitAsync(cancellation))))
            .OfType<DeploymentInfo>().ToArray();
        if (parse.GetValue(DeploymentsJson))
        {
            CommandSupport.WriteJson(deployments.Select(d => new
            {
                d.Id, Model = d.Request.ModelPath, Stages = d.Stages.Select(s => new { Silo = s.NodeName, Layers = new[] { s.FirstLayer, s.EndLayer }, s.WeightBytes, s.KvCacheBytes, s.PeakKvCacheBytes }),
                d.SequencesRunning, d.SequencesWaiting, d.Jobs, d.LastUsedAt, d.Request.IdleUnloadSeconds,
            }));
            return 0;
        }
        var table = new Table().AddColumns("deployment", "model", "stages", "weights MiB", "KV cache MiB (peak)", "running", "waiting", "jobs", "last used", "unloads when idle");
        foreach (var d in deployments)
            table.AddRow(d.Id, HubCache.RepoIdOfSnapshot(d.Request.ModelPath) ?? Path.GetFileName(d.Request.ModelPath.TrimEnd('/')), string.Join(", ", d.Stages.Select(s => $"{s.NodeName} [{s.FirstLayer}, {s.EndLayer})")),
                Mib(d.Stages.Sum(s => s.WeightBytes)), $"{Mib(d.Stages.Sum(s => s.KvCacheBytes))} ({Mib(d.Stages.Sum(s => s.PeakKvCacheBytes))})", $"{d.SequencesRunning}", $"{d.SequencesWaiting}", $"{d.Jobs}",
                d.LastUsedAt.ToString("u", System.Globalization.CultureInfo.InvariantCulture),
                d.Request.IdleUnloadSeconds > 0 ? $"after {d.Request.IdleUnloadSeconds} s" : "never");
        AnsiConsole.Write(table);
        return 0;
    }

    private static string Mib(long bytes) => (bytes / (1024.0 * 1024)).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);

    private static async Task<int> UnloadAsync(ParseResult parse, CancellationToken cancellation)
    {
        string id = parse.GetRequiredValue(DeploymentId);
        await using var cluster = await ClusterOptionGroup.ConnectToRunningAsync(parse, cancellation);
        var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>(id);
        if (await coordinator.Describe().WaitAsync(cancellation) is null)
            throw new InvalidOperationException($"no deployment {id} (cluster deployments lists them)");
        await coordinator.Unload().WaitAsync(cancellation);
        Console.WriteLine($"deployment {id}: unloaded");
        return 0;
    }

    private static async Task<int> UpAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        int silos = parse.GetValue(Silos) ?? throw new UsageException("--silos N is required");
        int? basePort = parse.GetValue(BasePort);
        string clusterId = parse.GetValue(ClusterOptionGroup.ClusterId) ?? ClusterTarget.DefaultClusterId;
        string? device = parse.GetValue(ModelOptionGroup.Device);
        int threads = parse.GetValue(ModelOptionGroup.Threads);
        string? modelPath = parse.GetValue(ModelOptionGroup.Model);
        string? tokenizer = parse.GetValue(ModelOptionGroup.Tokenizer);
        string? servedName = parse.GetValue(ModelOptionGroup.ServeName);
        int? httpPort = parse.GetValue(HttpPort);
        string? apiKeyFile = parse.GetValue(ApiKeyFile);
        int? stages = parse.GetValue(Stages);
        var wireGiven = parse.GetValue(ClusterOptionGroup.Wire);
        var wire = wireGiven ?? WireEncoding.F32;
        var storage = parse.GetValue(ModelOptionGroup.DType);
        // Several routers, as run takes them, so that run --cluster with the same ones finds this deployment.
        var pruning = PruningOptionGroup.Bind(parse, severalRouters: true);
        bool deploymentOptions = stages is not null || wireGiven is not null || storage is not null || pruning is not null
            || tokenizer is not null || servedName is not null;

        if (silos < 1) throw new UsageException($"--silos must be at least 1, got {silos}");
        if (basePort is { } port && (port < 1 || port + 2 * silos - 1 > 65535))
            throw new UsageException($"--base-port {port} leaves no room for {silos} silos (each takes two ports: silo, gateway) below 65536");
        if (modelPath is null && deploymentOptions)
            throw new UsageException("--stages, --wire, --dtype, --router, --tokenizer and --serve-name describe a deployment: give --model PATH too");
        if (httpPort is { } http && (http < 1 || http > 65535)) throw new UsageException($"--http-port must be 1-65535, got {http}");
        if (apiKeyFile is not null && httpPort is null) throw new UsageException("--api-key-file needs --http-port");
        if (apiKeyFile is not null && !File.Exists(apiKeyFile)) throw new UsageException($"--api-key-file: no such file: {apiKeyFile}");
        pruning?.CheckUsableWith(new ClusterTarget(stages, [], clusterId, wire));
        if (stages is { } s && (s < 1 || s > silos)) throw new UsageException($"--stages must be 1 to --silos ({silos}), got {s}");

        var siloOptions = EmbeddedCluster.LocalSiloOptions(silos, clusterId, basePort);
        foreach (var options in siloOptions)
        {
            options.Device = device ?? options.Device;
            options.Threads = threads;
            options.BenchmarkGrains = parse.GetValue(BenchmarkGrains);
        }
        try
        {
            EmbeddedCluster.PlaceOnDevices(siloOptions);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--device {device}: {e.Message}");
        }
        siloOptions[0].HttpPort = httpPort;
        siloOptions[0].ApiKeyFile = apiKeyFile is null ? null : Path.GetFullPath(apiKeyFile);
        var clientTls = parse.GetValue(Tls) is { } tlsFolder ? PrepareTls(Path.GetFullPath(tlsFolder), siloOptions) : null;
        // Resolved once the arguments are known to be right, so a mistake in them does not wait for a download first.
        var model = modelPath is null ? null : new ModelOptions(ModelArgument.Resolve(modelPath), tokenizer, device, threads, storage);
        var modelRoots = ModelRoots(parse.GetValue(ModelRoot), model, pruning);
        foreach (var options in siloOptions) options.ModelRoots = modelRoots;
        return await RunAsync(siloOptions, model, pruning, stages ?? silos, wire, servedName, clientTls, cancellationToken);
    }

    /// <summary>
    /// Points every silo at <paramref name="folder"/>'s certificates, made there first when it is missing or empty, and
    /// returns the clients' files. Every file is loaded and checked here, so a missing or foreign one is named before any
    /// silo starts.
    /// </summary>
    private static TlsFiles PrepareTls(string folder, FtpClusterSiloOptions[] siloOptions)
    {
        string[] nodes = [.. siloOptions.Select(o => o.NodeName)];
        if (ClusterCertificateFolder.IsMissingOrEmpty(folder))
        {
            ClusterCertificateFolder.Write(folder, nodes, TimeSpan.FromDays(ClusterCertsCommand.DefaultDays), overwrite: false);
            Console.WriteLine($"tls: made a cluster CA and certificates for {string.Join(", ", nodes)} and clients in {folder}");
        }
        foreach (string node in nodes) TlsCredentials.Load(TlsFiles.InFolder(folder, node), ClusterCertificateRole.Node);
        var client = TlsFiles.InFolder(folder, TlsFiles.ClientName);
        TlsCredentials.Load(client, ClusterCertificateRole.Client);
        foreach (var options in siloOptions) options.TlsFolder = folder;
        return client;
    }

    /// <summary>
    /// The silos' model roots: those given (--model-root, else FTPCLUSTER_MODEL_ROOTS), else the Hugging Face cache and the
    /// folders of the model, tokenizer and routers this command deploys.
    /// </summary>
    private static List<string> ModelRoots(string[]? given, ModelOptions? model, PruningOptions? pruning)
    {
        if (given is { Length: > 0 }) return [.. given.Select(Path.GetFullPath)];
        if (Environment.GetEnvironmentVariable(ModelRootsVariable) is { Length: > 0 } fromEnvironment)
            return [.. fromEnvironment.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Path.GetFullPath)];
        return [HubSettings.FromEnvironment().CacheRoot, .. EmbeddedCluster.ModelRootsFor([model?.ModelPath, model?.TokenizerPath, .. pruning?.RouterPaths ?? []])];
    }

    /// <summary>The variable the silo reads its model roots from too (FtpCluster.Silo's SiloCommandLine).</summary>
    private const string ModelRootsVariable = "FTPCLUSTER_MODEL_ROOTS";

    private static async Task<int> RunAsync(FtpClusterSiloOptions[] siloOptions, ModelOptions? model, PruningOptions? pruning, int stages, WireEncoding wire,
        string? servedName, TlsFiles? clientTls, CancellationToken cancellationToken)
    {
        using var cluster = await EmbeddedCluster.StartAsync(siloOptions, ForwardSiloOutput, cancellationToken: cancellationToken);
        foreach (var silo in cluster.Silos)
            Console.WriteLine($"silo {silo.Ready.NodeName}  silo {silo.Ready.Silo}  gateway {silo.Ready.Gateway}  pid {silo.Ready.ProcessId}");
        string gateways = string.Join(",", cluster.Gateways);
        Console.WriteLine($"gateways {gateways}");
        string clusterIdOption = (cluster.ClusterId == ClusterTarget.DefaultClusterId ? "" : $" --cluster-id {cluster.ClusterId}")
            + (siloOptions[0].TlsFolder is { } tls ? $" --tls {tls}" : "");

        if (model is not null)
        {
            var target = new ClusterTarget(stages, [.. cluster.Gateways.Select(g => (g.Address.ToString(), g.Port))], cluster.ClusterId, wire, clientTls);
            // A model the cluster serves over HTTP waits for requests: it is not unloaded for idleness.
            var serving = new ServingOptions(servedName, IdleUnloadSeconds: siloOptions[0].HttpPort is null ? DeploymentRequest.DefaultIdleUnloadSeconds : 0);
            await using var session = await PipelineSession.OpenAsync(target, model, pruning, cancellationToken, serving);
            var traffic = await session.TrafficAsync(cancellationToken);
            Console.WriteLine($"deployment {traffic.Deployment}");
            foreach (var (stage, index) in traffic.Stages.Select((stage, index) => (stage, index)))
                Console.WriteLine($"stage {index}  silo {stage.Silo}  layers [{stage.Layers[0]}, {stage.Layers[1]})");
            string dtype = PipelineSession.StorageWord(model.Storage) is { } storage ? $" --dtype {storage}" : "";
            Console.WriteLine($"use: ftpcluster generate --cluster {gateways}{clusterIdOption} --model {model.ModelPath} --stages {stages} --wire {wire.CliWord()}{dtype} ...");
        }
        else
        {
            Console.WriteLine($"use: ftpcluster generate --cluster {gateways}{clusterIdOption} --model PATH ...");
        }
        if (siloOptions[0].HttpPort is { } port)
            Console.WriteLine($"http http://127.0.0.1:{port}/v1" + (siloOptions[0].ApiKeyFile is null ? " (loopback only, no API key)" : ""));
        Console.WriteLine("up; Ctrl+C stops it");

        var stopped = Task.Delay(Timeout.Infinite, cancellationToken);
        var exited = cluster.FirstExitAsync();
        if (await Task.WhenAny(stopped, exited) == exited)
        {
            var silo = await exited;
            Console.Error.WriteLine($"ftpcluster: silo {silo.Options.NodeName} (pid {silo.Ready.ProcessId}) exited with code {await silo.Process.Exited}; stopping the cluster");
            return 1;
        }
        Console.WriteLine("stopping");
        return 0;
    }

    // Each silo's own log (warnings and errors only) goes on, marked with its node; its ready line is
    // summarised on stdout instead.
    private static void ForwardSiloOutput(string node, string line)
    {
        if (!SiloReadyLine.TryParse(line, out _)) Console.Error.WriteLine($"[{node}] {line}");
    }
}
