using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Api;

/// <summary>
/// Finds the deployment a request's <c>model</c> names: a deployment's served name (the older of two with one name),
/// as batches find theirs. The cluster's list is asked again after <see cref="FreshFor"/>, and at once when a name is not found.
/// </summary>
public sealed class DeploymentDirectory(IGrainFactory grains)
{
    private static readonly TimeSpan FreshFor = TimeSpan.FromSeconds(1);

    private (ServedDeployment[] Deployments, DateTime ReadAt) _cache = ([], DateTime.MinValue);

    public async Task<ServedDeployment[]> All(bool fresh = false)
    {
        var cache = _cache;
        if (!fresh && DateTime.UtcNow - cache.ReadAt < FreshFor) return cache.Deployments;
        var deployments = await grains.GetGrain<IDeploymentListGrain>(0).Served();
        _cache = (deployments, DateTime.UtcNow);
        return deployments;
    }

    /// <summary>The deployment serving <paramref name="model"/>, or null when none does.</summary>
    public async Task<ServedDeployment?> Find(string model) =>
        Match(await All(), model) ?? Match(await All(fresh: true), model);

    private static ServedDeployment? Match(ServedDeployment[] deployments, string model) =>
        deployments.FirstOrDefault(d => d.Name == model);

    /// <summary>The 404 for a model no deployment serves, naming the ones that are.</summary>
    public async Task<ApiException> NotServed(string model)
    {
        var names = (await All()).Select(d => d.Name).Distinct().ToArray();
        return ApiException.NotFound("model_not_found", "model", names.Length == 0
            ? $"the model '{model}' does not exist: this cluster serves no model yet"
            : $"the model '{model}' does not exist: this cluster serves {string.Join(", ", names.Select(n => $"'{n}'"))}");
    }
}
