using Microsoft.AspNetCore.Http;

namespace FtpCluster.Api;

/// <summary>
/// A request the API refuses, as OpenAI's API refuses it: the HTTP status, and the error object's type, code, param
/// (the request field at fault) and a message naming what is wrong. <see cref="ApiErrorMiddleware"/> writes it.
/// </summary>
public sealed class ApiException(int status, string type, string? code, string? param, string message) : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Code { get; } = code;
    public string? Param { get; } = param;

    public const string InvalidRequest = "invalid_request_error";

    public static ApiException BadRequest(string? code, string? param, string message) =>
        new(StatusCodes.Status400BadRequest, InvalidRequest, code, param, message);

    public static ApiException NotFound(string code, string? param, string message) =>
        new(StatusCodes.Status404NotFound, InvalidRequest, code, param, message);

    public static ApiException TooLarge(string? param, string message) =>
        new(StatusCodes.Status413PayloadTooLarge, InvalidRequest, "request_too_large", param, message);

    public static ApiException Overloaded(string message) =>
        new(StatusCodes.Status429TooManyRequests, "rate_limit_error", "rate_limit_exceeded", null, message);

    public static ApiException BadKey(string message) =>
        new(StatusCodes.Status401Unauthorized, InvalidRequest, "invalid_api_key", null, message);
}
