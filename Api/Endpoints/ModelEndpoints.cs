using System.Text.Json;
using FtpCluster.Grains.Pipeline;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace FtpCluster.Api.Endpoints;

/// <summary>
/// <c>GET /v1/models</c> and <c>GET /v1/models/{model}</c>: the served models in OpenAI's shape, each with an
/// <c>ftp</c> object beside it: its deployment, its stages (silo and layers) and its routers.
/// </summary>
internal static class ModelEndpoints
{
    public static void Map(IEndpointRouteBuilder v1)
    {
        v1.MapGet("/models", List);
        v1.MapGet("/models/{**model}", Get);
    }

    private static async Task List(HttpContext http)
    {
        var described = await Describe(http, await http.RequestServices.GetRequiredService<DeploymentDirectory>().All(fresh: true));
        // A name served twice is the older deployment's (as requests are).
        var models = described.DistinctBy(d => d.Served.Name).ToArray();
        await ApiJson.Write(http, json =>
        {
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            foreach (var (served, info) in models) WriteModel(json, served, info);
            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    private static async Task Get(HttpContext http, string model)
    {
        var directory = http.RequestServices.GetRequiredService<DeploymentDirectory>();
        var served = await directory.Find(model) ?? throw await directory.NotServed(model);
        var described = await Describe(http, [served]);
        if (described.Length == 0) throw await directory.NotServed(model);
        await ApiJson.Write(http, json => WriteModel(json, described[0].Served, described[0].Info));
    }

    /// <summary>The deployments that are loaded, with their descriptions (a listed one may be unloading).</summary>
    private static async Task<(ServedDeployment Served, DeploymentInfo Info)[]> Describe(HttpContext http, ServedDeployment[] deployments)
    {
        var grains = http.RequestServices.GetRequiredService<IGrainFactory>();
        var infos = await Task.WhenAll(deployments.Select(d => grains.GetGrain<ICoordinatorGrain>(d.DeploymentId).Describe()));
        return [.. deployments.Zip(infos).Where(p => p.Second is not null).Select(p => (p.First, p.Second!))];
    }

    private static void WriteModel(Utf8JsonWriter json, ServedDeployment served, DeploymentInfo info)
    {
        json.WriteStartObject();
        json.WriteString("id", served.Name);
        json.WriteString("object", "model");
        json.WriteTime("created", info.DeployedAt);
        json.WriteString("owned_by", "ftpcluster");
        json.WriteStartObject("ftp");
        json.WriteString("deployment", served.DeploymentId);
        json.WriteStartArray("stages");
        foreach (var stage in info.Stages)
        {
            json.WriteStartObject();
            json.WriteString("silo", stage.NodeName);
            json.WriteStartArray("layers");
            json.WriteNumberValue(stage.FirstLayer);
            json.WriteNumberValue(stage.EndLayer);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("routers");
        foreach (string router in info.Request.RouterPaths) json.WriteStringValue(Path.GetFileName(router));
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
