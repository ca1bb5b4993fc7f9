using System.Security.Cryptography;
using FtpCluster.Compute.Serving;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FtpCluster.Api;

/// <summary>
/// Gives every request an id (<c>x-request-id</c>), and turns what fails into OpenAI's error body: an
/// <see cref="ApiException"/> as it says, a body over Kestrel's limit as 413, anything else as a 500 whose message
/// carries the request id that the silo's log has beside the exception.
/// </summary>
internal sealed class ApiErrorMiddleware(RequestDelegate next, IOptions<HttpApiOptions> options, ILogger<ApiErrorMiddleware> logger)
{
    private const string RequestIdKey = "ftpcluster.request_id";

    /// <summary>The id of the request <paramref name="http"/> carries (set by this middleware, which runs first).</summary>
    public static string RequestId(HttpContext http) => (string)http.Items[RequestIdKey]!;

    public async Task InvokeAsync(HttpContext http)
    {
        string requestId = "req_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        http.Items[RequestIdKey] = requestId;
        http.Response.Headers["x-request-id"] = requestId;
        try
        {
            await next(http);
        }
        catch (ApiException e)
        {
            await WriteError(http, e);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await WriteError(http, ApiException.TooLarge(null, $"the request body is larger than this endpoint takes: {e.Message}"));
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client went away: there is no one to answer.
        }
        catch (Exception e)
        {
            logger.LogError(e, "Request {RequestId} ({Method} {Path}) failed", requestId, http.Request.Method, http.Request.Path);
            await WriteError(http, new ApiException(StatusCodes.Status500InternalServerError, "server_error", "server_error", null,
                $"the server had an error while processing the request (request id {requestId}): {e.Message}"));
        }
    }

    private Task WriteError(HttpContext http, ApiException error)
    {
        if (http.Response.HasStarted)
        {
            // A stream under way has its status line sent: the error goes as an event (the stream writes its own).
            logger.LogWarning("Request {RequestId}: {Error} after the response had begun", RequestId(http), error.Message);
            return Task.CompletedTask;
        }
        http.Response.Clear();
        http.Response.Headers["x-request-id"] = RequestId(http);
        http.Response.StatusCode = error.Status;
        if (error.Status == StatusCodes.Status429TooManyRequests)
            http.Response.Headers.RetryAfter = options.Value.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        http.Response.ContentType = "application/json";
        return http.Response.Body.WriteAsync(CompletionChunks.Error(error.Message, error.Type, error.Param, error.Code)).AsTask();
    }
}
