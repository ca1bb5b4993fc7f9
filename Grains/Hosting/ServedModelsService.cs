using FtpCluster.Compute.Hub;
using FtpCluster.Compute.Models;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Pipeline;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// Deploys the models a silo was started to serve (<see cref="FtpClusterSiloOptions.Serve"/>) once the cluster has
/// the silos their stages need, under the ids every command derives for the same model (<see cref="DeploymentIds"/>),
/// and never unloads them for idleness: a served model waits for requests. A model already deployed is left as it is.
/// A Hugging Face repo id is resolved here, on this silo, through its Hugging Face cache (downloaded when missing).
/// </summary>
internal sealed class ServedModelsService(FtpClusterSiloOptions options, IGrainFactory grains, ILogger<ServedModelsService> logger)
    : BackgroundService
{
    private static readonly TimeSpan Retry = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Serve.Count == 0) return;
        // Repo ids are downloaded (when the cache lacks them) while the other silos join.
        var resolved = new List<(string Model, string Path, string? Name)>();
        foreach (var (model, name) in options.ServedModels())
        {
            try
            {
                string path = await HubModelResolver.ResolveFromEnvironmentAsync(model, new LoggedDownloadProgress(logger, model), stoppingToken);
                resolved.Add((model, path, name));
            }
            catch (Exception e) when (e is HubException or ArgumentException or ModelFormatException)
            {
                logger.LogError("Serving {Model}: it could not be resolved to local files: {Error}", model, e.Message);
            }
        }
        bool waitingLogged = false;
        while (true)
        {
            try
            {
                int silos = (await grains.GetGrain<IClusterNodesGrain>(0).GetActiveNodes().WaitAsync(stoppingToken)).Length;
                if (silos >= options.ServeStages) break;
                if (!waitingLogged)
                    logger.LogInformation("Serving waits for {Stages} silos to deploy its models; {Silos} have joined", options.ServeStages, silos);
                waitingLogged = true;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The silo is still joining: its first grain calls fail until it has.
            }
            await Task.Delay(Retry, stoppingToken);
        }
        foreach (var (model, path, name) in resolved)
        {
            string[]? routers = options.ServeRouters.Count > 0 ? [.. options.ServeRouters.Select(Path.GetFullPath)] : null;
            string id = DeploymentIds.For(path, options.ServeStages, "f32", storage: null, routers);
            try
            {
                var coordinator = grains.GetGrain<ICoordinatorGrain>(id);
                if ((await coordinator.Stages().WaitAsync(stoppingToken)).Length == options.ServeStages)
                {
                    logger.LogInformation("Serving {Model}: deployment {Deployment} is up already", model, id);
                    continue;
                }
                var stages = await coordinator.Deploy(new DeploymentRequest(Path.GetFullPath(path), options.ServeStages, Routers: routers,
                        Tokenizer: options.ServeTokenizer is null ? null : Path.GetFullPath(options.ServeTokenizer), ServedName: name, IdleUnloadSeconds: 0))
                    .WaitAsync(stoppingToken);
                logger.LogInformation("Serving {Model} as deployment {Deployment}: {Plan}", model, id,
                    string.Join(", ", stages.Select(s => $"{s.NodeName} [{s.FirstLayer}, {s.EndLayer})")));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError("Serving {Model}: it could not be deployed: {Error}", model, e.Message);
            }
        }
    }
}
