using FtpCluster.Client.Cluster;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>ftpcluster cluster up</c>: a local cluster of silo processes in the foreground until Ctrl+C or
/// SIGTERM, for other commands to use through <c>--cluster</c>; with <c>--model</c> it also deploys the
/// model, under the deployment id those commands derive for the same options.
/// </summary>
internal static class ClusterCommand
{
    public static int Up(string[] args)
    {
        var a = new Arguments(args, new HashSet<string>(PruningOptions.Flags));
        int silos = a.Has("silos") ? a.Int("silos", 0) : throw new UsageException("--silos N is required");
        int? basePort = a.Has("base-port") ? a.Int("base-port", 0) : null;
        string clusterId = a.String("cluster-id") ?? ClusterTarget.DefaultClusterId;
        string? device = a.String("device");
        int threads = a.Int("threads", 0);
        string? modelPath = a.String("model");
        int? stages = a.Has("stages") ? a.Int("stages", 0) : null;
        var wire = ClusterTarget.ParseWire(a.String("wire") ?? "f32");
        var storage = CommandSupport.Storage(a);
        var pruning = PruningOptions.Read(a);
        bool deploymentOptions = stages is not null || a.String("wire") is not null || storage is not null || pruning is not null;
        a.RejectUnknown();

        if (silos < 1) throw new UsageException($"--silos must be at least 1, got {silos}");
        if (basePort is { } port && (port < 1 || port + 2 * silos - 1 > 65535))
            throw new UsageException($"--base-port {port} leaves no room for {silos} silos (each takes two ports: silo, gateway) below 65536");
        if (modelPath is null && deploymentOptions) throw new UsageException("--stages, --wire, --dtype and --router describe a deployment: give --model PATH too");
        pruning?.CheckUsableWith(new ClusterTarget(stages, [], clusterId, wire));
        if (stages is { } s && (s < 1 || s > silos)) throw new UsageException($"--stages must be 1 to --silos ({silos}), got {s}");

        var siloOptions = EmbeddedCluster.LocalSiloOptions(silos, clusterId, basePort);
        foreach (var options in siloOptions)
        {
            options.Device = device ?? options.Device;
            options.Threads = threads;
        }
        var model = modelPath is null ? null : new ModelOptions(modelPath, null, device, threads, storage);
        return UpAsync(siloOptions, model, pruning, stages ?? silos, wire).GetAwaiter().GetResult();
    }

    private static async Task<int> UpAsync(FtpClusterSiloOptions[] siloOptions, ModelOptions? model, PruningOptions? pruning, int stages, WireEncoding wire)
    {
        using var interruption = new Interruption();
        using var cluster = await EmbeddedCluster.StartAsync(siloOptions, ForwardSiloOutput, cancellationToken: interruption.Token);
        foreach (var silo in cluster.Silos)
            Console.WriteLine($"silo {silo.Ready.NodeName}  silo {silo.Ready.Silo}  gateway {silo.Ready.Gateway}  pid {silo.Ready.ProcessId}");
        string gateways = string.Join(",", cluster.Gateways);
        Console.WriteLine($"gateways {gateways}");
        string clusterIdOption = cluster.ClusterId == ClusterTarget.DefaultClusterId ? "" : $" --cluster-id {cluster.ClusterId}";

        if (model is not null)
        {
            var target = new ClusterTarget(stages, [.. cluster.Gateways.Select(g => (g.Address.ToString(), g.Port))], cluster.ClusterId, wire);
            await using var session = await PipelineSession.OpenAsync(target, model, pruning, interruption.Token);
            var traffic = await session.TrafficAsync(interruption.Token);
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
        Console.WriteLine("up; Ctrl+C stops it");

        var stopped = Task.Delay(Timeout.Infinite, interruption.Token);
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
