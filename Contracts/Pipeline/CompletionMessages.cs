namespace FtpCluster.Grains.Pipeline;

/// <summary>One request of a job, as its input line gave it: the endpoint's URL and the request body's JSON.</summary>
/// <param name="Key">Unique within its job (the batch line's custom_id): a line submitted twice runs once.</param>
/// <param name="LineNumber">Where the line is in its input file, for error messages.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.CompletionLine")]
public sealed record CompletionLine(
    [property: Id(0)] string Key,
    [property: Id(1)] int LineNumber,
    [property: Id(2)] string Url,
    [property: Id(3)] string Body);

/// <summary>A job's results from one collection.</summary>
/// <param name="Held">The job's lines the coordinator still holds (waiting or running) after these. Fewer than the
/// job has handed it and not had back means the coordinator lost some (a new activation after its silo died,
/// which knows none of them): the job hands them again.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.CollectedLines")]
public sealed record CollectedLines(
    [property: Id(0)] CompletionLineResult[] Results,
    [property: Id(1)] int Held);

/// <summary>
/// A finished line: the response body's JSON (a completion or chat.completion object), or an error code and
/// message naming what is wrong with it; and its token counts, for the job's totals.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.CompletionLineResult")]
public sealed record CompletionLineResult(
    [property: Id(0)] string Key,
    [property: Id(1)] int LineNumber,
    [property: Id(2)] string? Body,
    [property: Id(3)] string? ErrorCode,
    [property: Id(4)] string? ErrorMessage,
    [property: Id(5)] int PromptTokens = 0,
    [property: Id(6)] int CompletionTokens = 0,
    [property: Id(7)] long TokensComputed = 0,
    [property: Id(8)] long TokensSkipped = 0,
    [property: Id(9)] long WireBytes = 0)
{
    public bool Succeeded => Body is not null;

    public static CompletionLineResult Failed(CompletionLine line, string code, string message) =>
        new(line.Key, line.LineNumber, null, code, message);
}

/// <summary>Why an online request was not started: OpenAI's error code, the request field at fault (or null), and a
/// message naming what is wrong. <see cref="OverloadedCode"/> means the deployment's queue is full: try again later.</summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.CompletionRefusal")]
public sealed record CompletionRefusal(
    [property: Id(0)] string Code,
    [property: Id(1)] string? Param,
    [property: Id(2)] string Message)
{
    public const string OverloadedCode = "rate_limit_exceeded";
}

/// <summary>
/// An online request's text since the previous poll. Text is only ever sent once it is final: never half a character,
/// never the start of what may become a stop string, so the pieces joined are the finished answer's text.
/// </summary>
/// <param name="Result">Once <paramref name="Finished"/>: the response body (or the error) and the token counts.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.CompletionProgress")]
public sealed record CompletionProgress(
    [property: Id(0)] string Text,
    [property: Id(1)] bool Finished,
    [property: Id(2)] CompletionLineResult? Result);
