using System.Buffers;
using System.Text;
using System.Text.Json;
using FtpCluster.Compute.Serving;
using FtpCluster.Grains.Pipeline;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FtpCluster.Api.Endpoints;

/// <summary>
/// <c>POST /v1/completions</c> and <c>POST /v1/chat/completions</c>. The body is read here only to find its
/// deployment; the deployment's coordinator checks and runs it as it does a batch line (one implementation). The
/// answer is polled from the coordinator, whole or, with <c>stream: true</c>, as server-sent events; a client that
/// goes away cancels its sequence.
/// </summary>
internal static class CompletionEndpoints
{
    public static void Map(IEndpointRouteBuilder v1)
    {
        v1.MapPost("/completions", (HttpContext http) => Complete(http, CompletionEndpoint.Completions));
        v1.MapPost("/chat/completions", (HttpContext http) => Complete(http, CompletionEndpoint.ChatCompletions));
    }

    private static async Task Complete(HttpContext http, CompletionEndpoint endpoint)
    {
        var options = http.RequestServices.GetRequiredService<IOptions<HttpApiOptions>>().Value;
        byte[] body = await RequestBodies.ReadJson(http, options.MaxJsonBodyBytes);
        CompletionRequest request;
        try
        {
            using var json = JsonDocument.Parse(body);
            request = CompletionRequest.Parse(json.RootElement, endpoint);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest(null, null, $"the request body is not valid JSON: {e.Message}");
        }
        catch (RequestException e)
        {
            throw ApiException.BadRequest(e.Code, e.Param, e.Message);
        }
        if (request.MaxTokens > options.MaxTokens)
            throw ApiException.BadRequest(ErrorCodes.InvalidValue, "max_tokens",
                $"'max_tokens' is {request.MaxTokens}, more than the {options.MaxTokens} this server allows a request");

        var directory = http.RequestServices.GetRequiredService<DeploymentDirectory>();
        var deployment = await directory.Find(request.Model) ?? throw await directory.NotServed(request.Model);
        using var slot = request.Stream
            ? http.RequestServices.GetRequiredService<StreamSlots>().Take(ApiKeys.BearerToken(http.Request) ?? "")
            : null;

        string requestId = ApiErrorMiddleware.RequestId(http);
        var coordinator = http.RequestServices.GetRequiredService<IGrainFactory>().GetGrain<ICoordinatorGrain>(deployment.DeploymentId);
        var line = new CompletionLine(requestId, 0, endpoint.Url(), Encoding.UTF8.GetString(body));
        if (await coordinator.StartCompletion(line, options.MaxWaitingSequences) is { } refusal)
            throw refusal.Code switch
            {
                CompletionRefusal.OverloadedCode => ApiException.Overloaded(refusal.Message),
                ErrorCodes.ModelNotFound => ApiException.NotFound(refusal.Code, refusal.Param, refusal.Message),
                _ => ApiException.BadRequest(refusal.Code, refusal.Param, refusal.Message),
            };

        var logger = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(CompletionEndpoints));
        bool answered = false;
        try
        {
            answered = request.Stream
                ? await Stream(http, coordinator, requestId, endpoint, request, logger)
                : await Answer(http, coordinator, requestId, logger);
        }
        finally
        {
            if (!answered)
            {
                // The client went away (or the answer failed on the way): its sequence stops at the next step
                // instead of generating for no one.
                await coordinator.CancelCompletion(requestId);
                logger.LogInformation("Request {RequestId}: ended before its answer was sent; its sequence is cancelled", requestId);
            }
        }
    }

    /// <returns>Whether the answer was sent whole.</returns>
    private static async Task<bool> Answer(HttpContext http, ICoordinatorGrain coordinator, string requestId, ILogger logger)
    {
        CompletionProgress progress;
        do
        {
            progress = await coordinator.PollCompletion(requestId, OnlinePoll).WaitAsync(http.RequestAborted);
        }
        while (!progress.Finished);
        var result = progress.Result!;
        if (!result.Succeeded) throw Failure(result, requestId, logger);
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(result.Body!, http.RequestAborted);
        return true;
    }

    /// <summary>How long one poll waits for new text: long enough to cost little, short enough to notice a client gone.</summary>
    private static readonly TimeSpan OnlinePoll = TimeSpan.FromSeconds(5);

    /// <returns>Whether the stream was sent to its end; false when the client went away.</returns>
    private static async Task<bool> Stream(HttpContext http, ICoordinatorGrain coordinator, string requestId, CompletionEndpoint endpoint,
        CompletionRequest request, ILogger logger)
    {
        bool chat = endpoint == CompletionEndpoint.ChatCompletions;
        string id = (chat ? "chatcmpl-" : "cmpl-") + requestId["req_".Length..];
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        var output = http.Response.BodyWriter;
        bool first = true;
        if (chat)
        {
            // The assistant's role at once, as OpenAI does: the client knows the request was taken.
            CompletionChunks.WriteEvent(output, CompletionChunks.Delta(endpoint, id, created, request.Model, "", first: true, finishReason: null));
            if (!await Flush()) return false;
            first = false;
        }
        while (true)
        {
            CompletionProgress progress;
            try
            {
                progress = await coordinator.PollCompletion(requestId, OnlinePoll).WaitAsync(http.RequestAborted);
            }
            catch (Exception e) when (!http.RequestAborted.IsCancellationRequested)
            {
                // The status line is sent: the failure goes to the client as the stream's last event.
                logger.LogError(e, "Request {RequestId} failed while streaming", requestId);
                CompletionChunks.WriteEvent(output, CompletionChunks.Error(
                    $"the server had an error while streaming the answer (request id {requestId}): {e.Message}", "server_error", null, "server_error"));
                output.Write(CompletionChunks.Done);
                await Flush();
                return false;
            }
            if (progress.Finished)
            {
                var result = progress.Result!;
                if (!result.Succeeded)
                {
                    var error = Failure(result, requestId, logger);
                    CompletionChunks.WriteEvent(output, CompletionChunks.Error(error.Message, error.Type, error.Param, error.Code));
                }
                else
                {
                    // Logprobs come whole with the answer, so the last chunk carries them all: a client that joins the
                    // chunks' logprobs, as it joins their text, has the whole answer's.
                    using var body = JsonDocument.Parse(result.Body!);
                    var choice = body.RootElement.GetProperty("choices")[0];
                    string finishReason = choice.GetProperty("finish_reason").GetString()!;
                    CompletionChunks.WriteEvent(output, CompletionChunks.Delta(endpoint, id, created, request.Model, progress.Text, first, finishReason,
                        choice.GetProperty("logprobs")));
                    if (request.IncludeUsage)
                        CompletionChunks.WriteEvent(output, CompletionChunks.Usage(endpoint, id, created, request.Model, result.PromptTokens,
                            result.CompletionTokens, new FtpUsage(result.TokensComputed, result.TokensSkipped, result.WireBytes)));
                }
                output.Write(CompletionChunks.Done);
                return await Flush();
            }
            if (progress.Text.Length == 0) continue;
            CompletionChunks.WriteEvent(output, CompletionChunks.Delta(endpoint, id, created, request.Model, progress.Text, first, finishReason: null));
            first = false;
            if (!await Flush()) return false;
        }

        // False once the connection is gone: the reader of the response has stopped.
        async Task<bool> Flush()
        {
            var flushed = await output.FlushAsync(http.RequestAborted);
            return !flushed.IsCompleted && !flushed.IsCanceled;
        }
    }

    /// <summary>A request that failed after it started: the client's (it asked for more than the deployment holds) or the server's.</summary>
    private static ApiException Failure(CompletionLineResult result, string requestId, ILogger logger)
    {
        if (result.ErrorCode is not ("server_error" or "request_lost" or "deployment_unloaded" or "cancelled"))
            return ApiException.BadRequest(result.ErrorCode, null, result.ErrorMessage!);
        logger.LogError("Request {RequestId} failed on its deployment: {Code}: {Error}", requestId, result.ErrorCode, result.ErrorMessage);
        return new ApiException(StatusCodes.Status500InternalServerError, "server_error", result.ErrorCode, null,
            $"{result.ErrorMessage} (request id {requestId})");
    }
}
