using System.Security.Cryptography;
using System.Text.Json;
using FtpCluster.Compute.Serving;
using FtpCluster.Grains.Batches;
using FtpCluster.Grains.Files;
using FtpCluster.Grains.Jobs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using ServingEndpoints = FtpCluster.Compute.Serving.CompletionEndpoints;

namespace FtpCluster.Api.Endpoints;

/// <summary>
/// <c>/v1/batches</c>: create, get, list, cancel. A batch is a job of the cluster (<see cref="IBatchGrain"/> runs it
/// as one), so <c>ftpcluster jobs</c> sees the same batches, and it goes on when the silo that took it is lost.
/// </summary>
internal static class BatchEndpoints
{
    /// <summary>OpenAI's bounds on a batch's metadata.</summary>
    private const int MaxMetadataPairs = 16, MaxMetadataKeyLength = 64, MaxMetadataValueLength = 512;

    private const string BatchIdPrefix = "batch_";

    public static void Map(IEndpointRouteBuilder v1)
    {
        v1.MapPost("/batches", Create);
        v1.MapGet("/batches", List);
        v1.MapGet("/batches/{id}", Get);
        v1.MapPost("/batches/{id}/cancel", Cancel);
    }

    private static async Task Create(HttpContext http, IGrainFactory grains, IOptions<HttpApiOptions> options)
    {
        var spec = ReadSpec(await RequestBodies.ReadJson(http, options.Value.MaxJsonBodyBytes));
        var file = await FileEndpoints.Find(grains, spec.InputFileId, "input_file_id");
        if (file.Purpose != FileLimits.BatchPurpose)
            throw ApiException.BadRequest(ErrorCodes.InvalidValue, "input_file_id",
                $"the file '{file.Id}' has purpose '{file.Purpose}'; a batch's input file must have purpose '{FileLimits.BatchPurpose}'");
        string id = BatchIdPrefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        BatchInfo batch;
        try
        {
            batch = await grains.GetGrain<IBatchGrain>(id).Create(spec);
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest(ErrorCodes.InvalidValue, null, e.Message);
        }
        await ApiJson.Write(http, json => WriteBatch(json, batch));
    }

    private static BatchSpec ReadSpec(byte[] body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest(ErrorCodes.InvalidType, null, "the request body must be a JSON object");
            string inputFileId = RequiredString(root, "input_file_id");
            string endpoint = RequiredString(root, "endpoint");
            if (!ServingEndpoints.TryParseUrl(endpoint, out _))
                throw ApiException.BadRequest(ErrorCodes.UnsupportedValue, "endpoint",
                    $"'endpoint' must be '{ServingEndpoints.CompletionsUrl}' or '{ServingEndpoints.ChatCompletionsUrl}', got '{endpoint}'");
            string window = RequiredString(root, "completion_window");
            if (window != "24h") throw ApiException.BadRequest(ErrorCodes.InvalidValue, "completion_window", $"'completion_window' must be '24h', got '{window}'");
            return new BatchSpec(inputFileId, endpoint, window, ReadMetadata(root));
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest(null, null, $"the request body is not valid JSON: {e.Message}");
        }
    }

    private static string RequiredString(JsonElement body, string name)
    {
        if (!body.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            throw ApiException.BadRequest(ErrorCodes.MissingRequiredParameter, name, $"'{name}' is required");
        return value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : throw ApiException.BadRequest(ErrorCodes.InvalidType, name, $"'{name}' must be a non-empty string, got {value.GetRawText()}");
    }

    private static Dictionary<string, string>? ReadMetadata(JsonElement body)
    {
        if (!body.TryGetProperty("metadata", out var metadata) || metadata.ValueKind == JsonValueKind.Null) return null;
        if (metadata.ValueKind != JsonValueKind.Object)
            throw ApiException.BadRequest(ErrorCodes.InvalidType, "metadata", "'metadata' must be an object of strings");
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in metadata.EnumerateObject())
        {
            if (pair.Value.ValueKind != JsonValueKind.String)
                throw ApiException.BadRequest(ErrorCodes.InvalidType, $"metadata.{pair.Name}", $"metadata values must be strings, '{pair.Name}' is {pair.Value.ValueKind}");
            string value = pair.Value.GetString()!;
            if (pair.Name.Length > MaxMetadataKeyLength || value.Length > MaxMetadataValueLength)
                throw ApiException.BadRequest(ErrorCodes.InvalidValue, $"metadata.{pair.Name}",
                    $"metadata keys have at most {MaxMetadataKeyLength} characters and values at most {MaxMetadataValueLength}");
            pairs[pair.Name] = value;
        }
        if (pairs.Count > MaxMetadataPairs)
            throw ApiException.BadRequest(ErrorCodes.InvalidValue, "metadata", $"'metadata' has {pairs.Count} pairs, more than the {MaxMetadataPairs} allowed");
        return pairs;
    }

    private static async Task Get(HttpContext http, IGrainFactory grains, string id)
    {
        var batch = await Find(grains, id);
        await ApiJson.Write(http, json => WriteBatch(json, batch));
    }

    private static async Task List(HttpContext http, IGrainFactory grains, string? after, int? limit)
    {
        int count = limit ?? 20;
        if (count is < 1 or > 100) throw ApiException.BadRequest(ErrorCodes.InvalidValue, "limit", $"'limit' must be 1 to 100, got {count}");
        // Newest first, as OpenAI lists them.
        var ids = (await grains.GetGrain<IJobListGrain>(0).Ids()).Where(i => i.StartsWith(BatchIdPrefix, StringComparison.Ordinal)).Reverse().ToList();
        int start = after is null ? 0 : ids.IndexOf(after) + 1;
        if (after is not null && start == 0) throw ApiException.NotFound("batch_not_found", "after", $"no such batch: '{after}'");
        var page = ids.Skip(start).Take(count).ToArray();
        var batches = (await Task.WhenAll(page.Select(i => grains.GetGrain<IBatchGrain>(i).Info()))).OfType<BatchInfo>().ToArray();
        bool hasMore = start + page.Length < ids.Count;
        await ApiJson.Write(http, json => json.WriteList(batches, b => b.Id, hasMore, WriteBatch));
    }

    private static async Task Cancel(HttpContext http, IGrainFactory grains, string id)
    {
        await Find(grains, id);
        BatchInfo batch;
        try
        {
            batch = await grains.GetGrain<IBatchGrain>(id).Cancel();
        }
        catch (InvalidOperationException e)
        {
            throw ApiException.BadRequest("batch_not_cancellable", null, e.Message);
        }
        await ApiJson.Write(http, json => WriteBatch(json, batch));
    }

    private static async Task<BatchInfo> Find(IGrainFactory grains, string id) =>
        (id.StartsWith(BatchIdPrefix, StringComparison.Ordinal) ? await grains.GetGrain<IBatchGrain>(id).Info() : null)
        ?? throw ApiException.NotFound("batch_not_found", "batch_id", $"no such batch: '{id}'");

    /// <summary>OpenAI's batch object.</summary>
    private static void WriteBatch(Utf8JsonWriter json, BatchInfo batch)
    {
        json.WriteStartObject();
        json.WriteString("id", batch.Id);
        json.WriteString("object", "batch");
        json.WriteString("endpoint", batch.Spec.Endpoint);
        json.WritePropertyName("errors");
        if (batch.Errors.Length == 0) json.WriteNullValue();
        else
        {
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            foreach (var error in batch.Errors)
            {
                json.WriteStartObject();
                json.WriteString("code", error.Code);
                json.WriteString("message", error.Message);
                json.WriteStringOrNull("param", error.Param);
                if (error.Line is { } line) json.WriteNumber("line", line);
                else json.WriteNull("line");
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteString("input_file_id", batch.Spec.InputFileId);
        json.WriteString("completion_window", batch.Spec.CompletionWindow);
        json.WriteString("status", batch.Status);
        json.WriteStringOrNull("output_file_id", batch.OutputFileId);
        json.WriteStringOrNull("error_file_id", batch.ErrorFileId);
        json.WriteTime("created_at", batch.CreatedAt);
        json.WriteTime("in_progress_at", batch.InProgressAt);
        json.WriteTime("expires_at", batch.ExpiresAt);
        json.WriteTime("finalizing_at", batch.FinalizingAt);
        json.WriteTime("completed_at", batch.CompletedAt);
        json.WriteTime("failed_at", batch.FailedAt);
        json.WriteTime("expired_at", batch.ExpiredAt);
        json.WriteTime("cancelling_at", batch.CancellingAt);
        json.WriteTime("cancelled_at", batch.CancelledAt);
        json.WriteStartObject("request_counts");
        json.WriteNumber("total", batch.Total);
        json.WriteNumber("completed", batch.Completed);
        json.WriteNumber("failed", batch.Failed);
        json.WriteEndObject();
        json.WritePropertyName("metadata");
        if (batch.Spec.Metadata is null) json.WriteNullValue();
        else
        {
            json.WriteStartObject();
            foreach (var (key, value) in batch.Spec.Metadata) json.WriteString(key, value);
            json.WriteEndObject();
        }
        json.WriteEndObject();
    }
}
