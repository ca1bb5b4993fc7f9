namespace FtpCluster.Compute.Serving;

/// <summary>
/// A request that cannot be served as sent: the client's mistake, not the server's. <see cref="Code"/> is one of
/// <see cref="ErrorCodes"/> (OpenAI's style), <see cref="Param"/> the request field at fault (as OpenAI's
/// <c>error.param</c>) or null when no one field is, and the message names the field, what was expected and what
/// was found.
/// </summary>
public sealed class RequestException(string code, string? param, string message) : Exception(message)
{
    public string Code { get; } = code;
    public string? Param { get; } = param;
}

/// <summary>The error codes requests and batch lines are refused with, spelled as OpenAI-compatible clients expect.</summary>
public static class ErrorCodes
{
    /// <summary>A field of the wrong JSON type.</summary>
    public const string InvalidType = "invalid_type";

    public const string MissingRequiredParameter = "missing_required_parameter";

    /// <summary>A field of the right type whose value is out of range or not one of those accepted.</summary>
    public const string InvalidValue = "invalid_value";

    /// <summary>A valid OpenAI request this server does not do (several choices, image parts, streaming in a batch).</summary>
    public const string UnsupportedValue = "unsupported_value";

    public const string ModelNotFound = "model_not_found";
    public const string ContextLengthExceeded = "context_length_exceeded";

    /// <summary>A batch input line that is not JSON.</summary>
    public const string InvalidJsonLine = "invalid_json_line";

    /// <summary>A batch input line whose <c>custom_id</c> an earlier line already has.</summary>
    public const string DuplicateCustomId = "duplicate_custom_id";

    /// <summary>A batch input line over <see cref="BatchInputReader.MaxLineBytes"/>.</summary>
    public const string LineTooLong = "line_too_long";

    /// <summary>A batch input line that is not valid UTF-8.</summary>
    public const string InvalidEncoding = "invalid_encoding";

    /// <summary>A batch input line past the reader's limit on requests per file.</summary>
    public const string TooManyRequests = "too_many_requests";
}
