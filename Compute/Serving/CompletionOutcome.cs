namespace FtpCluster.Compute.Serving;

/// <summary>What the cluster made of one <see cref="PreparedRequest"/>, in tokens; <see cref="CompletionResponse"/> turns it into text.</summary>
/// <param name="GeneratedIds">The tokens generated, without the end-of-sequence token that stopped generation.</param>
/// <param name="FinishReason"><see cref="FinishReasons.Stop"/> (an end-of-sequence token or a stop string) or
/// <see cref="FinishReasons.Length"/> (max tokens or the context ran out).</param>
/// <param name="Logprobs">One per generated token when the request asked for logprobs; null otherwise.</param>
public sealed record CompletionOutcome(int PromptTokens, int[] GeneratedIds, string FinishReason, TokenLogprob[]? Logprobs, FtpUsage Ftp);

/// <summary>A generated token's log probability and the most likely tokens at its position, most likely first.</summary>
public sealed record TokenLogprob(int Token, float Logprob, TokenAlternative[] Top);

public sealed record TokenAlternative(int Token, float Logprob);

/// <summary>Token-pruning counts for one request, as the cluster measures them: tokens computed and skipped, and bytes sent between stages.</summary>
public sealed record FtpUsage(long TokensComputed, long TokensSkipped, long WireBytes)
{
    public static readonly FtpUsage None = new(0, 0, 0);
}

public static class FinishReasons
{
    public const string Stop = "stop";
    public const string Length = "length";
}
