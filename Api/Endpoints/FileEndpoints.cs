using System.Globalization;
using System.Text.Json;
using FtpCluster.Compute.Serving;
using FtpCluster.Grains.Files;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Net.Http.Headers;

namespace FtpCluster.Api.Endpoints;

/// <summary>
/// <c>/v1/files</c>: upload (multipart, <c>purpose=batch</c>), list, get, content, delete. An upload is streamed into
/// the file's chunk grains as it arrives, a piece at a time, so no silo holds a whole file and any silo serves it.
/// </summary>
internal static class FileEndpoints
{
    /// <summary>What a multipart body may carry besides the file: its boundaries and the purpose field.</summary>
    private const long MultipartOverheadBytes = 1 << 20;

    public static void Map(IEndpointRouteBuilder v1)
    {
        v1.MapPost("/files", Upload);
        v1.MapGet("/files", List);
        v1.MapGet("/files/{id}", Get);
        v1.MapGet("/files/{id}/content", Content);
        v1.MapDelete("/files/{id}", Delete);
    }

    private static async Task Upload(HttpContext http, IGrainFactory grains)
    {
        if (!MediaTypeHeaderValue.TryParse(http.Request.ContentType, out var contentType)
            || !contentType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(contentType.Boundary).Value is not { Length: > 0 } boundary)
            throw ApiException.BadRequest(null, null,
                $"an upload is a multipart/form-data body with the fields 'purpose' and 'file', got content type '{http.Request.ContentType}'");
        long maxBody = FileLimits.MaxFileBytes + MultipartOverheadBytes;
        if (http.Request.ContentLength > maxBody)
            throw ApiException.TooLarge("file", $"the upload has {http.Request.ContentLength} bytes; a file may have at most {FileLimits.MaxFileBytes}");
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = maxBody;

        var writer = new StoredFileWriter(grains, FileLimits.NewFileId());
        var reader = new MultipartReader(boundary, http.Request.Body);
        string? purpose = null;
        StoredContent? content = null;
        StoredFile file;
        try
        {
            while (await reader.ReadNextSectionAsync(http.RequestAborted) is { } section)
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)) continue;
                if (disposition.IsFileDisposition() && disposition.Name.Value == "file")
                {
                    if (content is not null) throw ApiException.BadRequest(null, "file", "an upload carries one file, this one has several");
                    content = await StoreContent(writer, section.Body, http.RequestAborted);
                    content = content with { Filename = HeaderUtilities.RemoveQuotes(disposition.FileName).Value ?? "upload" };
                }
                else if (disposition.Name.Value == "purpose")
                {
                    using var text = new StreamReader(section.Body);
                    char[] buffer = new char[64];
                    purpose = new string(buffer, 0, await text.ReadBlockAsync(buffer, http.RequestAborted)).Trim();
                }
            }
            if (content is null) throw ApiException.BadRequest(ErrorCodes.MissingRequiredParameter, "file", "the upload has no 'file' field");
            if (purpose is null) throw ApiException.BadRequest(ErrorCodes.MissingRequiredParameter, "purpose", "the upload has no 'purpose' field");
            if (purpose != FileLimits.BatchPurpose)
                throw ApiException.BadRequest(ErrorCodes.InvalidValue, "purpose", $"'purpose' must be '{FileLimits.BatchPurpose}' (the files this server keeps are batch inputs), got '{purpose}'");
            if (content.Lines > FileLimits.MaxBatchLines)
                throw ApiException.BadRequest(ErrorCodes.InvalidValue, "file",
                    $"the file has {content.Lines} requests; a batch input file may have at most {FileLimits.MaxBatchLines}");
            file = await grains.GetGrain<IFileGrain>(writer.FileId).Commit(content.Filename, purpose, content.Bytes, content.Chunks, content.Lines);
        }
        catch
        {
            await writer.Discard();
            throw;
        }
        await ApiJson.Write(http, json => WriteFile(json, file));
    }

    private sealed record StoredContent(string Filename, long Bytes, int Chunks, int Lines);

    /// <summary>The file's bytes into its pieces as they arrive, counting its non-blank lines (a batch file's requests).</summary>
    private static async Task<StoredContent> StoreContent(StoredFileWriter writer, Stream body, CancellationToken cancellation)
    {
        var buffer = new byte[64 << 10];
        int lines = 0;
        bool lineHasText = false;
        int read;
        while ((read = await body.ReadAsync(buffer, cancellation)) > 0)
        {
            foreach (byte b in buffer.AsSpan(0, read))
            {
                if (b == (byte)'\n')
                {
                    if (lineHasText) lines++;
                    lineHasText = false;
                }
                else if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r')) lineHasText = true;
            }
            if (writer.Bytes + read > FileLimits.MaxFileBytes)
                throw ApiException.TooLarge("file", $"the file is larger than the {FileLimits.MaxFileBytes} bytes a file may have");
            await writer.Write(buffer.AsMemory(0, read));
        }
        if (lineHasText) lines++;
        var pieces = await writer.Flush();
        return new StoredContent("", pieces.Bytes, pieces.Chunks, lines);
    }

    private static async Task List(HttpContext http, IGrainFactory grains, string? after, int? limit, string? order, string? purpose)
    {
        int count = limit ?? 10_000;
        if (count is < 1 or > 10_000) throw ApiException.BadRequest(ErrorCodes.InvalidValue, "limit", $"'limit' must be 1 to 10000, got {count}");
        if (order is not (null or "asc" or "desc")) throw ApiException.BadRequest(ErrorCodes.InvalidValue, "order", $"'order' must be 'asc' or 'desc', got '{order}'");
        var page = await grains.GetGrain<IFileListGrain>(0).List(after, count, purpose, ascending: order == "asc");
        await ApiJson.Write(http, json => json.WriteList(page.Files, f => f.Id, page.HasMore, WriteFile));
    }

    private static async Task Get(HttpContext http, IGrainFactory grains, string id)
    {
        var file = await Find(grains, id);
        await ApiJson.Write(http, json => WriteFile(json, file));
    }

    private static async Task Content(HttpContext http, IGrainFactory grains, string id)
    {
        var file = await Find(grains, id);
        http.Response.ContentType = "application/octet-stream";
        http.Response.ContentLength = file.Bytes;
        for (int n = 0; n < file.Chunks; n++)
            await http.Response.Body.WriteAsync(await grains.GetGrain<IFileChunkGrain>($"{id}/{n}").Read(), http.RequestAborted);
    }

    private static async Task Delete(HttpContext http, IGrainFactory grains, string id)
    {
        if (!await grains.GetGrain<IFileGrain>(id).Delete()) throw NoSuchFile(id);
        await ApiJson.Write(http, json =>
        {
            json.WriteStartObject();
            json.WriteString("id", id);
            json.WriteString("object", "file");
            json.WriteBoolean("deleted", true);
            json.WriteEndObject();
        });
    }

    public static async Task<StoredFile> Find(IGrainFactory grains, string id, string param = "file_id") =>
        await grains.GetGrain<IFileGrain>(id).Info() ?? throw NoSuchFile(id, param);

    private static ApiException NoSuchFile(string id, string param = "file_id") =>
        ApiException.NotFound("file_not_found", param, $"no such file: '{id}'");

    /// <summary>OpenAI's file object.</summary>
    public static void WriteFile(Utf8JsonWriter json, StoredFile file)
    {
        json.WriteStartObject();
        json.WriteString("id", file.Id);
        json.WriteString("object", "file");
        json.WriteNumber("bytes", file.Bytes);
        json.WriteTime("created_at", file.CreatedAt);
        json.WriteString("filename", file.Filename);
        json.WriteString("purpose", file.Purpose);
        json.WriteString("status", "processed");
        json.WriteNull("status_details");
        json.WriteNull("expires_at");
        json.WriteEndObject();
    }
}

